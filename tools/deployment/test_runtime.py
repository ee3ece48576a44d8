"""Evaluate an exported model in ONNX Runtime or OpenVINO, as tools/test.py
evaluates its checkpoint.

    python tools/deployment/test_runtime.py ONNX [--config CONFIG] \
        [--backend onnxruntime|openvino] [--precision f32|bf16] \
        [--batch-size 1] [--cfg-options k=v ...] [--out metrics.json]

The config (the one stored in the ONNX file unless ``--config`` is given)
names the test set and the evaluator: each image of
``test_dataloader.dataset`` is loaded as its test pipeline loads it, goes
through the runtime (its own resize, normalisation, padding and top-k) in
batches of ``--batch-size``, and the persons are scored by
``test_evaluator`` (``CocoMetric``), so the AP compares with
``tools/test.py CONFIG CHECKPOINT`` on the same images.
"""
import argparse
import time

from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope

import querypose_mm  # noqa: F401  (registers the modules)
from mmpose.registry import DATASETS
from querypose_mm.deployment import build_runtime
from querypose_mm.deployment.runtimes import CONFIG_KEY
from querypose_mm.engine.cli import add_runtime_args
from querypose_mm.utils import dump_json_atomically


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('onnx', help='model from pytorch2onnx.py')
    parser.add_argument(
        '--config', help='config to evaluate with (default: the stored one)')
    add_runtime_args(parser)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as tools/test.py')
    parser.add_argument('--out', help='write the metrics as JSON')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def load_config(args, runtime) -> Config:
    if args.config:
        cfg = Config.fromfile(args.config)
    elif CONFIG_KEY in runtime.metadata:
        cfg = Config.fromstring(runtime.metadata[CONFIG_KEY], '.py')
    else:
        raise ValueError(f'{args.onnx} stores no config: give --config')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def test_dataset(cfg: Config):
    """The test set, loading each image (BGR) and packing its metainfo as
    the test pipeline does, without the resize (the runtime's own)."""
    dataset_cfg = cfg.test_dataloader.dataset
    pipeline = dataset_cfg.pipeline
    dataset_cfg.pipeline = [
        t for t in pipeline if t['type'] in ('LoadImage', 'PackPoseInputs')
    ]
    return DATASETS.build(dataset_cfg)


def evaluate(runtime, cfg: Config, batch_size: int = 1) -> dict:
    """The metrics of ``cfg.test_evaluator`` on the runtime's persons of
    every image of the config's test set."""
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
        persons = runtime.predict(images, batch_size=batch_size)
        samples = []
        for item, pred in zip(packed, persons):
            sample = item['data_samples'].to_dict()
            sample.update(pred_instances=pred, gt_instances=dict())
            samples.append(sample)
        evaluator.process(samples)
    return evaluator.evaluate(len(dataset))


def main(argv=None):
    args = parse_args(argv)
    runtime = build_runtime(args.onnx, args.backend, args.precision)
    cfg = load_config(args, runtime)
    start = time.perf_counter()
    metrics = evaluate(runtime, cfg, args.batch_size)
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
