"""Evaluate an exported model in ONNX Runtime or OpenVINO, as tools/test.py
evaluates its checkpoint.

    python tools/deployment/test_runtime.py ONNX [--config CONFIG] \
        [--backend onnxruntime|openvino] [--precision fp32|bf16] \
        [--batch-size 1] [--cfg-options k=v ...] [--out metrics.json]

The config (the one stored in the ONNX file unless ``--config`` is given)
names the test set and the evaluator: each image of
``test_dataloader.dataset`` is loaded as its test pipeline loads it, goes
through the runtime (its own resize, normalisation, padding and top-k) in
batches of ``--batch-size``, and the persons are scored by
``test_evaluator`` (``CocoMetric``), so the AP compares with
``tools/test.py CONFIG CHECKPOINT`` on the same images.

``model.test_cfg`` (of the config or ``--cfg-options``) is applied where the
graph, which keeps the top ``max_per_img`` persons of the export, allows
it: ``max_per_img`` (fewer persons; more is refused: export again with it)
and ``score_thr`` (the persons whose pose score reaches it). Any other
``model.*`` option, and ``test_cfg.precision``, would change the graph:
they are refused by name (export again, or use ``--precision``). A
``--config`` whose head has another keypoint or query count than the
exported model is refused.
"""
import argparse
import time
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope

import querypose_mm  # noqa: F401  (registers the modules)
from mmpose.registry import DATASETS
from querypose_mm.deployment import (build_runtime, runtime_config,
                                     runtime_test_cfg)
from querypose_mm.engine.cli import add_runtime_args, positive_int
from querypose_mm.utils import check_output_file, dump_json_atomically

# the model options the runtime applies after the graph
RUNTIME_OPTIONS = ('model.test_cfg.max_per_img', 'model.test_cfg.score_thr',
                   'model.head.max_per_img')
# checked, not applied: only 'fp32' passes (a bf16 run is --precision's)
CHECKED_OPTIONS = ('model.test_cfg.precision', )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('onnx', help='model from pytorch2onnx.py')
    parser.add_argument(
        '--config', help='config to evaluate with (default: the stored one)')
    add_runtime_args(parser)
    parser.add_argument('--batch-size', type=positive_int, default=1)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as tools/test.py')
    parser.add_argument('--out', help='write the metrics as JSON')
    args = parser.parse_args(argv)
    for key in args.cfg_options or {}:
        if key.startswith('model.') and key not in (RUNTIME_OPTIONS +
                                                    CHECKED_OPTIONS):
            parser.error(
                f'--cfg-options {key}: the exported graph holds the model '
                'as it was exported; export again with it (the runtime '
                f'applies {", ".join(RUNTIME_OPTIONS)})')
    return args


def persons_settings(runtime, model_cfg) -> dict:
    """``max_per_img`` and ``score_thr`` of the config's model, as its
    PyTorch head applies them (``test_cfg`` over the head's, at most the
    query count); the other settings are checked by
    :func:`runtime_test_cfg`."""
    test_cfg = runtime_test_cfg(model_cfg.get('test_cfg') or {})
    head_max = (model_cfg.get('head') or {}).get('max_per_img')
    max_per_img = test_cfg.get('max_per_img', head_max)
    num_queries = runtime.settings['num_queries']
    return dict(
        max_per_img=runtime.max_per_img if max_per_img is None else min(
            max_per_img, num_queries),
        score_thr=test_cfg.get('score_thr'))


def above(persons: dict, score_thr: float) -> dict:
    """The persons whose pose score reaches ``score_thr``."""
    kept = persons['bbox_scores'] >= score_thr
    return {key: value[kept] for key, value in persons.items()}


def test_dataset(cfg: Config):
    """The test set, loading each image (BGR) and packing its metainfo as
    the test pipeline does, without the resize (the runtime's own)."""
    dataset_cfg = cfg.test_dataloader.dataset
    pipeline = dataset_cfg.pipeline
    dataset_cfg.pipeline = [
        t for t in pipeline if t['type'] in ('LoadImage', 'PackPoseInputs')
    ]
    return DATASETS.build(dataset_cfg)


def evaluate(runtime,
             cfg: Config,
             batch_size: int = 1,
             max_per_img: Optional[int] = None,
             score_thr: Optional[float] = None) -> dict:
    """The metrics of ``cfg.test_evaluator`` on the runtime's persons of
    every image of the config's test set: the top ``max_per_img`` (default:
    the exported count), those whose pose score reaches ``score_thr``."""
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    dataset = test_dataset(cfg)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    for start in range(0, len(dataset), batch_size):
        packed = [
            dataset[i]
            for i in range(start, min(start + batch_size, len(dataset)))
        ]
        images = [p['inputs'].permute(1, 2, 0).numpy() for p in packed]
        persons = runtime.predict(
            images, max_per_img=max_per_img, batch_size=batch_size)
        if score_thr is not None:
            persons = [above(p, score_thr) for p in persons]
        samples = []
        for item, pred in zip(packed, persons):
            sample = item['data_samples'].to_dict()
            sample.update(pred_instances=pred, gt_instances=dict())
            samples.append(sample)
        evaluator.process(samples)
    return evaluator.evaluate(len(dataset))


def main(argv=None):
    args = parse_args(argv)
    if args.out:
        check_output_file(args.out, '--out')
    runtime = build_runtime(args.onnx, args.backend, args.precision)
    cfg = runtime_config(runtime, args.onnx, args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    settings = persons_settings(runtime, cfg.model)
    start = time.perf_counter()
    metrics = evaluate(runtime, cfg, args.batch_size, **settings)
    seconds = time.perf_counter() - start
    print(f'{args.backend} {args.precision}, batch {args.batch_size}: ' +
          ', '.join(f'{k} {v:.4f}'
                    for k, v in metrics.items()) + f' ({seconds:.1f} s)')
    if args.out:
        dump_json_atomically(
            dict(
                metrics=metrics,
                backend=args.backend,
                precision=args.precision,
                batch_size=args.batch_size,
                seconds=seconds), args.out)
    return metrics


if __name__ == '__main__':
    main()
