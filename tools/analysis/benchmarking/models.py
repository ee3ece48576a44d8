"""Measure QueryPose and mmpose's multi-person peers side by side.

Every model is built from its config with random weights (pretrained
``init_cfg`` dropped: nothing is downloaded) and sees the same real images,
resized to the same short side and padded to 32, through the whole
``test_step`` (preprocessing, network, each model's own post-processing).
This module names the models (:data:`SPECS`) and builds them and their
inputs; :mod:`.measure` times them; :mod:`.report` writes the table.
``tools/analysis/benchmark.py`` runs :func:`.measure.measure` for each
model in a fresh process, so each peak-memory figure is its own. It reads
the checkout's configs and data, so it lives in ``tools/``, not in the
package.
"""
import builtins
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

REPO_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
_QUERYPOSE_R50 = 'querypose/coco/querypose_r50-fpn_8xb2-280k_coco-800x1333.py'


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked model.

    Attributes:
        description (str): What the row is.
        config (str): ``'querypose:<path under configs/>'`` or
            ``'mmpose:<path under mmpose's body_2d_keypoint configs>'``.
        head (dict): Merged into ``model.head`` (QueryPose variants).
        test_cfg (dict): Merged into ``model.test_cfg``.
        pad_size_divisor (int, optional): Overrides the preprocessor's.
        init_backbone_only (bool): Initialise only the backbone (a head
            whose ``init_weights`` fails; PyTorch's default init is as
            random for timing).
        max_batch (int, optional): Largest batch its ``predict`` takes.
        decoded_queries (int, optional): Decode the keypoints of this many
            queries per image: ``test_cfg.score_thr`` is set, on each
            benchmark input, to the class probability that lets exactly
            that many through (a derived row: the count a trained model
            decodes at a user's threshold, measured elsewhere).
    """
    description: str
    config: str
    head: Dict = field(default_factory=dict)
    test_cfg: Dict = field(default_factory=dict)
    pad_size_divisor: Optional[int] = None
    init_backbone_only: bool = False
    max_batch: Optional[int] = None
    decoded_queries: Optional[int] = None

    @property
    def is_querypose(self) -> bool:
        return self.config.startswith('querypose:')

    def config_path(self) -> str:
        source, rel_path = self.config.split(':', 1)
        if source == 'querypose':
            from querypose_mm.testing import get_config_path
            return get_config_path(rel_path)
        import mmpose
        return osp.join(
            osp.dirname(mmpose.__file__), '.mim', 'configs',
            'body_2d_keypoint', rel_path)


SPECS: Dict[str, ModelSpec] = {
    'querypose-r50':
    ModelSpec('QueryPose R50-FPN (ours)', f'querypose:{_QUERYPOSE_R50}'),
    'querypose-r50-matchedonly':
    ModelSpec(
        'QueryPose R50-FPN, the official v1 training regime (only the '
        'matched queries decoded in training)', 'querypose:querypose/coco/'
        'querypose_r50-fpn-matchedonly_8xb2-280k_coco-800x1333.py'),
    'querypose-r50-decode5':
    ModelSpec(
        'QueryPose R50-FPN, keypoints decoded for 5 queries per image '
        '(derived: test_cfg.score_thr set so that 5 pass; the trained light '
        '100-query quick start decodes 4.75 at 0.1), the refined Q_I kept '
        'inside each stage at test (Fig. 3(a), as the official v1 code), '
        'where score_thr decoding is exact',
        f'querypose:{_QUERYPOSE_R50}',
        head=dict(instance_query_flow=dict(train='serial', test='box_only')),
        decoded_queries=5),
    'querypose-r50-light':
    ModelSpec(
        'QueryPose R50-FPN, light (no Q_I update in the keypoint decoder)',
        f'querypose:{_QUERYPOSE_R50}',
        head=dict(keypoint_decoder=dict(update_instance_query=False))),
    'querypose-r50-cp':
    ModelSpec(
        'QueryPose R50-FPN, activation checkpointing of the keypoint '
        'decoders\' conv stacks (keypoint_decoder.with_cp=True)',
        f'querypose:{_QUERYPOSE_R50}',
        head=dict(keypoint_decoder=dict(with_cp=True))),
    'querypose-hrnet-w48':
    ModelSpec(
        'QueryPose HRNet-W48-FPN (ours)', 'querypose:querypose/coco/'
        'querypose_hrnet-w48-fpn_8xb2-280k_coco-800x1333.py'),
    'querypose-tiny':
    ModelSpec(
        'QueryPose CPU quick-start model', 'querypose:querypose/coco/'
        'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py'),
    'edpose-r50':
    ModelSpec(
        'ED-Pose R50 (mmpose 1.3.2)',
        'mmpose:edpose/coco/edpose_res50_8xb2-50e_coco-800x1333.py',
        # mmpose 1.3.2's EDPoseHead.init_weights indexes an FFN module
        # (TypeError: 'FFN' object is not subscriptable)
        init_backbone_only=True),
    'rtmo-l':
    ModelSpec('RTMO-l (mmpose 1.3.2)',
              'mmpose:rtmo/coco/rtmo-l_16xb16-600e_coco-640x640.py'),
    'dekr-hrnet-w32':
    ModelSpec(
        'DEKR HRNet-W32 (mmpose 1.3.2)',
        'mmpose:dekr/coco/dekr_hrnet-w32_8xb10-140e_coco-512x512.py',
        # its HRNet fuses branches at strides 4..32 and its head upsamples
        # once more: an input padded only to 32 gives off-by-one maps
        pad_size_divisor=64,
        max_batch=1),  # DEKRHead.predict refuses larger batches
}


@dataclass(frozen=True)
class Mode:
    """How a row runs its model (the ``MODE`` of ``NAME@MODE``).

    Attributes:
        name (str): As written after ``@``.
        test_cfg (dict): Merged into the model's ``test_cfg``.
        autocast (bool): Inference under ``torch.autocast`` (bf16 on the
            CPU, fp16 on CUDA, as mmengine's ``test_cfg=dict(fp16=True)``).
        channels_last (bool): The model's weights channels-last.
        runtime (str, optional): Time the exported ONNX model in this
            backend of :func:`querypose_mm.deployment.build_runtime`
            instead of PyTorch (on the CPU).
        precision (str): The runtime's precision (``'fp32'`` or
            ``'bf16'``).
        querypose_only (bool): Only QueryPose has it (its
            ``test_cfg.precision``, its export).
    """
    name: str
    test_cfg: Dict = field(default_factory=dict)
    autocast: bool = False
    channels_last: bool = False
    runtime: Optional[str] = None
    precision: str = 'fp32'
    querypose_only: bool = False

    @property
    def pytorch_bf16(self) -> bool:
        """Whether PyTorch runs it in bf16 (on the CPU: ``autocast`` too),
        which a oneDNN ISA cap below AVX512-BF16 makes slow."""
        return self.autocast or self.test_cfg.get('precision') == 'bf16'


MODES: Dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode('fp32'),
        Mode('autocast', autocast=True),
        Mode('channels-last', channels_last=True),
        Mode('bf16', test_cfg=dict(precision='bf16'), querypose_only=True),
        Mode('onnxruntime', runtime='onnxruntime', querypose_only=True),
        Mode('openvino', runtime='openvino', querypose_only=True),
        Mode(
            'openvino-bf16',
            runtime='openvino',
            precision='bf16',
            querypose_only=True),
    )
}
PYTORCH_MODES = tuple(name for name, mode in MODES.items()
                      if mode.runtime is None)
RUNTIME_MODES = tuple(name for name, mode in MODES.items() if mode.runtime)


def split_entry(entry: str) -> Tuple[str, str]:
    """``'NAME[@MODE]'`` -> ``(NAME, MODE)``, MODE ``'fp32'`` if none."""
    name, at, mode = entry.partition('@')
    if at and not mode:
        raise ValueError(f'{entry!r} has no mode after "@"; give NAME@MODE, '
                         f'MODE in {list(MODES)}, or NAME alone (fp32)')
    mode = mode or 'fp32'
    if name not in SPECS:
        raise ValueError(f'unknown model {name!r} in {entry!r}; choose from '
                         f'{sorted(SPECS)}')
    if mode not in MODES:
        raise ValueError(f'unknown mode {mode!r} in {entry!r}; choose from '
                         f'{list(MODES)}')
    spec = SPECS[name]
    if MODES[mode].querypose_only and not spec.is_querypose:
        raise ValueError(f'{entry}: mode {mode} is QueryPose\'s (exported '
                         'to ONNX, or its test_cfg.precision)')
    if MODES[mode].runtime and spec.decoded_queries:
        raise ValueError(f'{entry}: the exported graph decodes every query '
                         '(test_cfg.score_thr is not in it)')
    return name, mode


def load_config(path: str):
    """``Config.fromfile``, also for mmpose's new-style configs.

    mmpose 1.3.2's new-style (pure Python) configs, ED-Pose's among them,
    start with ``with read_base(): from mmpose.configs._base_... import *``,
    but the ``mmpose.configs`` package is only in mmpose's source tree, not
    in its wheel. Those bases hold the runtime (hooks, logger, visualizer),
    none of which a benchmark needs, so such a file is run without that
    block, against an empty ``train_cfg`` it may update, and its ``model``
    (whose ``type`` entries are classes) is taken as is.
    """
    from mmengine.config import Config
    with open(path) as f:
        source = f.read()
    base_block = re.compile(r'^with read_base\(\):\n(?:[ \t]+.*\n)+',
                            re.MULTILINE)
    if 'mmpose.configs._base_' not in source or not base_block.search(source):
        return Config.fromfile(path)
    namespace = _BaseSettings(__file__=path)
    exec(compile(base_block.sub('', source), path, 'exec'), namespace)
    return Config(dict(model=namespace['model'], default_scope='mmpose'))


class _BaseSettings(dict):
    """Module namespace in which a setting the missing base would have
    defined (``train_cfg``, ``default_hooks``, ...) is an empty dict."""

    def __missing__(self, key):
        if key.startswith('__') or hasattr(builtins, key):
            raise KeyError(key)  # let Python find builtins as usual
        self[key] = dict()
        return self[key]


def _strip_pretrained(node) -> None:
    """Random weights: drop every pretrained ``init_cfg`` (no downloads);
    'Pretrained' as a string, or mmengine's PretrainedInit class in
    new-style configs."""
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and 'Pretrained' in str(
                init_cfg.get('type')):
            node['init_cfg'] = None
        for value in node.values():
            _strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _strip_pretrained(value)


def build_model(name: str, device: str, test_cfg: Optional[Dict] = None):
    """The model ``SPECS[name]`` with random weights, in eval mode, and its
    config; ``test_cfg`` is merged over the spec's."""
    from mmengine.registry import init_default_scope

    from mmpose.registry import MODELS
    spec = SPECS[name]
    cfg = load_config(spec.config_path())
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    _strip_pretrained(cfg.model)
    test_cfg = dict(spec.test_cfg, **(test_cfg or {}))
    if spec.head or test_cfg:
        cfg.model.merge(dict(head=spec.head, test_cfg=test_cfg))
    if spec.pad_size_divisor:
        cfg.model.data_preprocessor.pad_size_divisor = spec.pad_size_divisor
    model = MODELS.build(cfg.model)
    if spec.init_backbone_only:
        model.backbone.init_weights()
    else:
        model.init_weights()
    return model.to(device).eval(), cfg


def load_inputs(short_side: int, max_size: int, count: int) -> List[dict]:
    """``count`` real images (data/coco_mini/val2017) through the same
    resize for every model."""
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    import querypose_mm  # noqa: F401  (RandomShortSideResize)
    from mmpose.datasets import CocoDataset
    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    # the project's test pipeline (load, short-side resize, pack), at the
    # benchmark's size
    pipeline = Config.fromfile(
        osp.join(REPO_ROOT, 'configs/_base_/datasets/'
                 'coco_bottomup_querypose.py')).val_pipeline
    resize = [t for t in pipeline if t.type == 'RandomShortSideResize'][0]
    resize.update(scales=short_side, max_size=max_size)
    pipeline = Compose(pipeline)
    meta = parse_pose_metainfo(CocoDataset.METAINFO)
    from querypose_mm.utils import list_images
    folder = osp.join(REPO_ROOT, 'data/coco_mini/val2017')
    paths = [osp.join(folder, name) for name in list_images(folder)]
    return [
        pipeline(
            dict(
                img_path=path,
                id=i,
                img_id=i,
                flip_indices=meta['flip_indices'],
                dataset_name='coco')) for i, path in enumerate(paths[:count])
    ]


def as_batch(samples: List[dict]) -> dict:
    return dict(
        inputs=[s['inputs'] for s in samples],
        data_samples=[s['data_samples'] for s in samples])
