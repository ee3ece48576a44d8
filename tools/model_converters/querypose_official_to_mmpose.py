"""Convert an official QueryPose checkpoint (detectron2) to this project.

    python tools/model_converters/querypose_official_to_mmpose.py SRC DST \
        [--config CONFIG] [--cfg-options k=v ...] [--trust]

SRC is a released checkpoint of github buptxyb666/QueryPose (a torch file
whose ``model`` entry is the state dict, or a bare state dict). Without
``--config`` the config follows the neck the checkpoint holds and its
version, light (no Q_I update in the keypoint decoder; the released models)
or full (in configs/querypose/coco/): HRFPN ->
querypose_hrnet-w32-hrfpn[-light]_8xb2-280k_coco-800x1333.py, HRFPN_v1 ->
querypose_hrnet-w48-hrfpnv1[-light]_8xb2-280k_coco-800x1333.py.
Every key is mapped and checked against the config's model (shapes too);
the official parameters that are never used are dropped and listed; any
other mismatch stops the conversion with the list, and nothing is written.
DST is an mmengine checkpoint for tools/test.py, mim test, init_model and
MMPoseInferencer with the same config; it must be another file than SRC
(however spelled: a link or another path to SRC is refused), in a writable
folder, checked before anything is loaded.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config, DictAction

import querypose_mm  # noqa: F401  (registers the modules)
from mmpose.registry import MODELS
from mmpose.utils import register_all_modules
from querypose_mm.utils import (atomic_output, check_not_input,
                                check_output_file, check_torch_save_file)
from querypose_mm.utils.official_checkpoint import (convert_state_dict,
                                                    load_official_checkpoint,
                                                    official_model_kind)

CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'querypose', 'coco')
CONFIG_BY_KIND = {
    ('HRFPN', 'light'):
    'querypose_hrnet-w32-hrfpn-light_8xb2-280k_coco-800x1333.py',
    ('HRFPN', 'full'): 'querypose_hrnet-w32-hrfpn_8xb2-280k_coco-800x1333.py',
    ('HRFPN_v1', 'light'):
    'querypose_hrnet-w48-hrfpnv1-light_8xb2-280k_coco-800x1333.py',
    ('HRFPN_v1', 'full'):
    'querypose_hrnet-w48-hrfpnv1_8xb2-280k_coco-800x1333.py',
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint')
    parser.add_argument('dst', help='mmengine checkpoint to write')
    parser.add_argument(
        '--config',
        help='our config of the model (default: by its neck and version)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='overrides of the config, e.g. '
        'model.head.keypoint_decoder.update_instance_query=False')
    parser.add_argument(
        '--trust',
        action='store_true',
        help='load SRC with weights_only=False (only for a file you trust)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # what --trust cannot help with, before the loader suggests it
    check_torch_save_file(args.src, 'official checkpoint')
    check_output_file(args.dst, 'DST')
    check_not_input(args.dst, 'DST', args.src, 'official checkpoint SRC')
    if args.config:
        check_not_input(args.dst, 'DST', args.config, '--config')
    official = load_official_checkpoint(args.src, trust=args.trust)
    if args.config is None:
        neck, version = official_model_kind(official)
        config = osp.join(CONFIGS, CONFIG_BY_KIND[neck, version])
        kind = f'neck {neck}, {version} version'
    else:
        config, kind = args.config, 'the given config'

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(args.cfg_options)
    register_all_modules()
    model = MODELS.build(cfg.model)
    target = model.state_dict()
    state_dict, dropped, filled = convert_state_dict(
        official, target, cfg.model.head.part_groups)
    # the module versions of today's layout, so no upgrade hook runs
    state_dict._metadata = target._metadata
    model.load_state_dict(state_dict, strict=True)
    with atomic_output(args.dst) as partial:
        torch.save(
            dict(
                meta=dict(
                    converted_from=osp.basename(args.src),
                    config=osp.relpath(config)
                    if args.config is None else config,
                    querypose_mm=querypose_mm.__version__),
                state_dict=state_dict), partial)
    print(f'{len(official)} official tensors -> {len(state_dict)} of '
          f'{osp.basename(config)} ({kind}); written {args.dst}')
    print(f'dropped, never used by the official model ({len(dropped)}): ' +
          (', '.join(sorted(dropped)) or 'none'))
    print(f'taken from the model, constants the official one does not '
          f'store ({len(filled)}): ' + (', '.join(filled) or 'none'))
    return state_dict


if __name__ == '__main__':
    main()
