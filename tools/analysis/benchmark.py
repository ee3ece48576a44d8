"""Side-by-side inference benchmark: QueryPose and mmpose's multi-person peers.

    python tools/analysis/benchmark.py [--models querypose-r50 edpose-r50 ...]
        [--short-side 800] [--max-size 1333] [--runs 10] [--warmup 2]
        [--batch-size 2] [--device cpu|cuda] [--train-step] [--channels-last]
        [--quick] [--out-dir work_dirs/benchmark]

Every model is built from its config with random weights (nothing is
downloaded; pretrained ``init_cfg`` is dropped) and measured in a fresh
subprocess, so each peak-memory figure is its own. All models see the same
real images (``data/coco_mini/val2017``), resized to the same short side and
padded to 32, and go through the whole ``test_step``: data preprocessing,
network and each model's own post-processing. Figures:

* params (M); GMACs of one forward at the benchmark input, counted with
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
  products; one multiply-add = 1 MAC, the unit mmpose/mmdet call "FLOPs");
* latency at batch 1: median and p90 over ``--runs`` runs after
  ``--warmup`` runs; throughput (images/s) at ``--batch-size``;
* peak memory: the subprocess's peak RSS on the CPU, or
  ``torch.cuda.max_memory_allocated`` on CUDA;
* for QueryPose, the time per module group (backbone, FPN, RoI extraction,
  box decoder, SPEGM, SIM, part MHA + FFN, ...), from forward hooks;
* ``--train-step``: QueryPose's training iteration at batch 2 (time and peak
  memory), with and without autocast (fp16 on CUDA, bf16 on the CPU).

Writes ``benchmark.json``, ``benchmark.csv`` and ``benchmark.png`` into
``--out-dir`` and prints the table. With random weights, post-processing
that depends on the predictions (DEKR's and RTMO's NMS/grouping, which sees
almost no confident people) is not representative of a trained model.
"""
import argparse
import builtins
import csv
import glob
import json
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import time
from collections import defaultdict
from typing import Dict, List

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _mmpose_config(rel_path: str) -> str:
    import mmpose
    return osp.join(
        osp.dirname(mmpose.__file__), '.mim', 'configs', 'body_2d_keypoint',
        rel_path)


# name -> (config path resolver, short description)
MODELS = {
    'querypose-r50':
    (lambda: osp.join(REPO_ROOT, 'configs/querypose/coco/'
                      'querypose_r50-fpn_8xb2-2x_coco-800.py'),
     'QueryPose R50-FPN (ours)'),
    'querypose-r50-light':
    (lambda: osp.join(REPO_ROOT, 'configs/querypose/coco/'
                      'querypose_r50-fpn_8xb2-2x_coco-800.py'),
     'QueryPose R50-FPN, light (no Q_I update in the keypoint decoder)'),
    'querypose-r50-topk20':
    (lambda: osp.join(REPO_ROOT, 'configs/querypose/coco/'
                      'querypose_r50-fpn_8xb2-2x_coco-800.py'),
     'QueryPose R50-FPN, fast inference: top-20 persons, keypoints decoded '
     'for the top-20 queries of each stage (test_cfg.decode_topk=20)'),
    'querypose-hrnet-w48':
    (lambda: osp.join(REPO_ROOT, 'configs/querypose/coco/'
                      'querypose_hrnet-w48-fpn_8xb2-2x_coco-800.py'),
     'QueryPose HRNet-W48-FPN (ours)'),
    'querypose-tiny':
    (lambda: osp.join(REPO_ROOT, 'configs/querypose/coco/'
                      'querypose_r18-tiny_1xb2-cpu_coco-mini-256.py'),
     'QueryPose CPU quick-start model'),
    'edpose-r50':
    (lambda: _mmpose_config(
        'edpose/coco/edpose_res50_8xb2-50e_coco-800x1333.py'),
     'ED-Pose R50 (mmpose 1.3.2)'),
    'rtmo-l':
    (lambda: _mmpose_config(
        'rtmo/coco/rtmo-l_16xb16-600e_coco-640x640.py'),
     'RTMO-l (mmpose 1.3.2)'),
    'dekr-hrnet-w32':
    (lambda: _mmpose_config(
        'dekr/coco/dekr_hrnet-w32_8xb10-140e_coco-512x512.py'),
     'DEKR HRNet-W32 (mmpose 1.3.2)'),
}
DEFAULT_MODELS = ['querypose-r50', 'edpose-r50', 'rtmo-l', 'dekr-hrnet-w32']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models',
        nargs='+',
        default=DEFAULT_MODELS,
        choices=sorted(MODELS),
        help='models to measure, in this order')
    parser.add_argument('--short-side', type=int, default=800)
    parser.add_argument('--max-size', type=int, default=1333)
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--batch-size', type=int, default=2, help='for the throughput')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch\'s own choice)')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='convert every model to channels-last memory format')
    parser.add_argument(
        '--train-step',
        action='store_true',
        help='also time QueryPose training iterations at batch 2')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='tiny settings for tests: short side 256, 2 runs, 1 warm-up')
    parser.add_argument('--out-dir', default='work_dirs/benchmark')
    parser.add_argument('--single', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.short_side, args.max_size = min(args.short_side, 256), min(
            args.max_size, 427)
        args.runs, args.warmup = min(args.runs, 2), min(args.warmup, 1)
    return args


# ----------------------------------------------------------------------
# one model, in its own process
# ----------------------------------------------------------------------
def _strip_pretrained(cfg) -> None:
    """Random weights: drop every pretrained init_cfg (no downloads)."""

    def walk(node):
        if isinstance(node, dict):
            init_cfg = node.get('init_cfg')
            # 'Pretrained' as a string, or mmengine's PretrainedInit class in
            # new-style (lazy) configs
            if isinstance(init_cfg, dict) and 'Pretrained' in str(
                    init_cfg.get('type')):
                node['init_cfg'] = None
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(cfg.model)


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
    import re

    from mmengine.config import Config
    with open(path) as f:
        source = f.read()
    base_block = re.compile(r'^with read_base\(\):\n(?:[ \t]+.*\n)+',
                            re.MULTILINE)
    if 'mmpose.configs._base_' not in source or not base_block.search(
            source):
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


def build_model(name: str, device: str):
    from mmengine.registry import init_default_scope

    from mmpose.registry import MODELS as POSE_MODELS
    cfg = load_config(MODELS[name][0]())
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    _strip_pretrained(cfg)
    if name == 'querypose-r50-light':
        cfg.model.head.keypoint_decoder.update_instance_query = False
    if name == 'querypose-r50-topk20':
        # COCO's keypoint AP reads at most 20 persons per image
        cfg.model.test_cfg.update(max_per_img=20, decode_topk=20)
    if name.startswith('dekr'):
        # DEKR's HRNet fuses branches at strides 4..32 and its head upsamples
        # once more: an input padded only to 32 gives off-by-one maps
        cfg.model.data_preprocessor.pad_size_divisor = 64
    model = POSE_MODELS.build(cfg.model)
    if name.startswith('edpose'):
        # mmpose 1.3.2's EDPoseHead.init_weights indexes an FFN module
        # (TypeError: 'FFN' object is not subscriptable); PyTorch's default
        # initialisation is just as random for timing
        model.backbone.init_weights()
    else:
        model.init_weights()
    return model.to(device).eval(), cfg


def load_inputs(short_side: int, max_size: int, count: int) -> List[dict]:
    """Real images through the same resize for every model."""
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    import querypose_mm  # noqa: F401  (RandomShortSideResize)
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    from mmpose.datasets import CocoDataset
    pipeline = Compose([
        dict(type='LoadImage'),
        dict(
            type='RandomShortSideResize',
            scales=short_side,
            max_size=max_size),
        dict(
            type='PackPoseInputs',
            meta_keys=('id', 'img_id', 'img_path', 'ori_shape', 'img_shape',
                       'input_size', 'input_center', 'input_scale',
                       'flip', 'flip_direction', 'flip_indices',
                       'raw_ann_info', 'dataset_name'))
    ])
    meta = parse_pose_metainfo(CocoDataset.METAINFO)
    paths = sorted(
        glob.glob(osp.join(REPO_ROOT, 'data/coco_mini/val2017/*.jpg')))
    samples = []
    for i, path in enumerate(paths[:count]):
        samples.append(
            pipeline(
                dict(
                    img_path=path,
                    id=i,
                    img_id=i,
                    flip_indices=meta['flip_indices'],
                    dataset_name='coco')))
    return samples


def _batch(samples: List[dict]) -> dict:
    return dict(
        inputs=[s['inputs'] for s in samples],
        data_samples=[s['data_samples'] for s in samples])


def _sync(device: str) -> None:
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def _module_groups(model) -> Dict[str, list]:
    """QueryPose's modules by the role they play."""
    head = model.head
    groups = defaultdict(list)
    groups['backbone'].append(model.backbone)
    groups['FPN'].append(model.neck)
    groups['RoI extraction'] += [
        head.box_roi_extractor, head.pose_roi_extractor
    ]
    for box_decoder, kd in zip(head.box_decoders, head.keypoint_decoders):
        groups['box decoder (DIIHead)'].append(box_decoder)
        groups['SPEGM'].append(kd.spegm)
        groups['SIM'].append(kd.sim)
        groups['part MHA + FFN'] += [
            kd.part_attention, kd.part_attention_norm, kd.part_ffn,
            kd.part_ffn_norm
        ]
        groups['keypoint heads (coord, sigma)'] += [
            kd.coord_head, kd.sigma_head, kd.instance_to_part
        ]
        if kd.update_instance_query:
            groups['Q_I update (Fig. 3b)'] += [
                kd.instance_conv, kd.instance_conv_norm, kd.instance_ffn,
                kd.instance_ffn_norm
            ]
    return groups


def module_breakdown(model, batch, device, runs) -> Dict[str, float]:
    """Mean milliseconds per group over ``runs`` test steps (batch 1)."""
    import torch
    spent = defaultdict(float)
    handles = []
    for group, modules in _module_groups(model).items():
        for module in modules:
            starts = []

            def pre(_module, _args, starts=starts):
                _sync(device)
                starts.append(time.perf_counter())

            def post(_module, _args, _out, starts=starts, group=group):
                _sync(device)
                spent[group] += time.perf_counter() - starts.pop()

            handles += [
                module.register_forward_pre_hook(pre),
                module.register_forward_hook(post)
            ]
    total = 0.0
    with torch.no_grad():
        for _ in range(runs):
            _sync(device)
            start = time.perf_counter()
            model.test_step(batch)
            _sync(device)
            total += time.perf_counter() - start
    for handle in handles:
        handle.remove()
    result = {k: 1000 * v / runs for k, v in spent.items()}
    result['other (preprocess, top-k, decode)'] = 1000 * total / runs - sum(
        result.values())
    return result


def count_macs(model, batch) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    # FlopCounterMode's module tracker hooks the backward of every module
    # output that requires grad; a module that returns a parameter as is
    # (QueryPose's learnable proposals) would trip it
    requires_grad = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.test_step(batch)
    finally:
        for param, flag in zip(model.parameters(), requires_grad):
            param.requires_grad_(flag)
    return counter.get_total_flops() / 2


def time_test_steps(model, batch, device, runs, warmup) -> List[float]:
    import torch
    times = []
    with torch.no_grad():
        for i in range(warmup + runs):
            _sync(device)
            start = time.perf_counter()
            model.test_step(batch)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def train_step_benchmark(name, args) -> List[dict]:
    """QueryPose training iterations at batch 2, with and without autocast."""
    import torch
    from mmengine.optim import build_optim_wrapper

    from mmpose.datasets import CocoDataset
    model, cfg = build_model(name, args.device)
    model.train()
    dataset = CocoDataset(
        data_root=osp.join(REPO_ROOT, 'data/coco_mini'),
        data_mode='bottomup',
        ann_file='annotations/person_keypoints_train2017_quickstart.json',
        data_prefix=dict(img='train2017/'),
        pipeline=[
            dict(type='LoadImage'),
            dict(type='FilterInstances'),
            dict(
                type='RandomShortSideResize',
                scales=args.short_side,
                max_size=args.max_size),
            dict(type='PackPoseInputs')
        ])
    batch = _batch([dataset[0], dataset[1]])
    results = []
    amp_dtype = torch.float16 if args.device.startswith(
        'cuda') else torch.bfloat16
    for use_amp in (False, True):
        label = str(amp_dtype).replace('torch.', '') if use_amp else 'off'
        optim_cfg = cfg.optim_wrapper.to_dict()
        if use_amp:
            optim_cfg.update(type='AmpOptimWrapper', dtype=amp_dtype)
        try:
            optim_wrapper = build_optim_wrapper(model, optim_cfg)
        except Exception as error:  # mmengine's AMP refuses the CPU
            results.append(dict(amp=label, error=str(error)))
            continue
        if args.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(args.warmup + args.runs):
            _sync(args.device)
            start = time.perf_counter()
            model.train_step(batch, optim_wrapper)
            _sync(args.device)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        results.append(
            dict(
                amp=label,
                iter_s_median=float(np.median(times)),
                peak_mem_mb=_peak_memory_mb(args.device)))
    return results


def _peak_memory_mb(device: str) -> float:
    import torch
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(name: str, args) -> dict:
    import mmcv
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    model, _ = build_model(name, args.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    samples = load_inputs(args.short_side, args.max_size,
                          max(args.batch_size, 1))
    single = _batch(samples[:1])
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    latency = time_test_steps(model, single, args.device, args.runs,
                              args.warmup)
    # DEKRHead.predict refuses batches larger than 1
    batch_size = 1 if name.startswith('dekr') else args.batch_size
    batched = _batch(samples[:batch_size])
    batch_times = time_test_steps(model, batched, args.device,
                                  max(args.runs // 2, 1), 1)
    input_hw = tuple(single['inputs'][0].shape[-2:])
    result = dict(
        model=name,
        description=MODELS[name][1],
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        gmacs=count_macs(model, single) / 1e9,
        latency_ms_median=1000 * float(np.median(latency)),
        latency_ms_p90=1000 * float(np.percentile(latency, 90)),
        throughput_img_s=batch_size / float(np.median(batch_times)),
        throughput_batch=batch_size,
        peak_mem_mb=_peak_memory_mb(args.device),
        input_hw=input_hw,
        device=args.device if not args.device.startswith('cuda') else
        torch.cuda.get_device_name(),
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        threads=torch.get_num_threads(),
        channels_last=args.channels_last)
    if name.startswith('querypose'):
        result['breakdown_ms'] = module_breakdown(model, single, args.device,
                                                  max(args.runs // 2, 1))
        if args.train_step:
            result['train_step'] = train_step_benchmark(name, args)
    return result


# ----------------------------------------------------------------------
# the driver
# ----------------------------------------------------------------------
def run_in_subprocess(name: str, args, out_dir: str) -> dict:
    out_file = osp.join(out_dir, f'{name}.json')
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--single', name, '--out-dir', out_dir,
        '--short-side',
        str(args.short_side), '--max-size',
        str(args.max_size), '--runs',
        str(args.runs), '--warmup',
        str(args.warmup), '--batch-size',
        str(args.batch_size), '--device', args.device
    ]
    if args.threads:
        cmd += ['--threads', str(args.threads)]
    if args.train_step:
        cmd.append('--train-step')
    if args.channels_last:
        cmd.append('--channels-last')
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-1:] or ['(no output)']
        return dict(
            model=name, description=MODELS[name][1], error=tail[0][:300])
    with open(out_file) as f:
        return json.load(f)


def format_table(results: List[dict]) -> str:
    header = ('model', 'params (M)', 'GMACs', 'lat. median (ms)',
              'lat. p90 (ms)', 'img/s', 'peak mem (MB)')
    rows = [header]
    for r in results:
        if 'error' in r:
            rows.append((r['model'], 'failed: ' + r['error'], '', '', '', '',
                         ''))
            continue
        rows.append((r['model'], f"{r['params_m']:.1f}", f"{r['gmacs']:.1f}",
                     f"{r['latency_ms_median']:.0f}",
                     f"{r['latency_ms_p90']:.0f}",
                     f"{r['throughput_img_s']:.2f} (b{r['throughput_batch']})",
                     f"{r['peak_mem_mb']:.0f}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(7)]
    lines = [
        '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(row, widths)) +
        ' |' for row in rows
    ]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    text = '\n'.join(lines)
    for r in results:
        if 'breakdown_ms' in r:
            text += f"\n\n{r['model']}: time per module group (ms, batch 1)\n"
            total = sum(r['breakdown_ms'].values())
            for group, ms in sorted(
                    r['breakdown_ms'].items(), key=lambda kv: -kv[1]):
                text += f'  {group:<36} {ms:9.1f}  {100 * ms / total:5.1f} %\n'
        for step in r.get('train_step', []):
            if 'error' in step:
                text += f"{r['model']} train step, amp {step['amp']}: " \
                        f"not supported ({step['error'][:120]})\n"
            else:
                text += (f"{r['model']} train step (batch 2), amp "
                         f"{step['amp']}: {step['iter_s_median']:.2f} s/iter,"
                         f" peak {step['peak_mem_mb']:.0f} MB\n")
    ours = {r['model']: r for r in results if 'error' not in r}
    if 'querypose-r50' in ours and 'edpose-r50' in ours:
        ratio = ours['querypose-r50']['latency_ms_median'] / ours[
            'edpose-r50']['latency_ms_median']
        text += (f'\nQueryPose-R50 / ED-Pose-R50 latency ratio: '
                 f'{ratio:.2f}\n')
    return text


def plot(results: List[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ok = [r for r in results if 'error' not in r]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = [r['model'] for r in ok]
    axes[0].bar(names, [r['latency_ms_median'] for r in ok])
    axes[0].set_ylabel('latency, batch 1 (ms, median)')
    axes[1].bar(names, [r['gmacs'] for r in ok], color='tab:orange')
    axes[1].set_ylabel('GMACs')
    for ax in axes:
        ax.tick_params(axis='x', rotation=20)
    if ok:
        r = ok[0]
        fig.suptitle(f"input {r['input_hw'][0]}x{r['input_hw'][1]}, "
                     f"{r['device']}, torch {r['torch']}, mmcv {r['mmcv']}")
    fig.tight_layout()
    fig.savefig(path + '.partial.png', dpi=100)
    os.replace(path + '.partial.png', path)


def _write_atomic(path: str, text: str) -> None:
    with open(path + '.partial', 'w') as f:
        f.write(text)
    os.replace(path + '.partial', path)


def main(argv=None):
    args = parse_args(argv)
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    if args.single:
        result = measure_one(args.single, args)
        _write_atomic(
            osp.join(out_dir, f'{args.single}.json'), json.dumps(result))
        return result

    results = []
    for name in args.models:
        print(f'measuring {name} ...', flush=True)
        results.append(run_in_subprocess(name, args, out_dir))
    meta = dict(
        date=time.strftime('%Y-%m-%d'),
        machine=f'{platform.machine()}, {os.cpu_count()} CPUs, '
        f'{platform.platform()}',
        short_side=args.short_side,
        max_size=args.max_size,
        runs=args.runs,
        warmup=args.warmup,
        batch_size=args.batch_size,
        channels_last=args.channels_last,
        macs_counter='torch.utils.flop_counter.FlopCounterMode (MACs)',
        note='random weights: NMS/grouping time of DEKR and RTMO is not '
        'representative of trained models')
    _write_atomic(
        osp.join(out_dir, 'benchmark.json'),
        json.dumps(dict(meta=meta, results=results), indent=1))
    fields = [
        'model', 'params_m', 'gmacs', 'latency_ms_median', 'latency_ms_p90',
        'throughput_img_s', 'throughput_batch', 'peak_mem_mb', 'input_hw',
        'device', 'torch', 'mmcv', 'threads', 'channels_last', 'error'
    ]
    with open(osp.join(out_dir, 'benchmark.csv.partial'), 'w') as f:
        writer = csv.DictWriter(f, fields, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(results)
    os.replace(
        osp.join(out_dir, 'benchmark.csv.partial'),
        osp.join(out_dir, 'benchmark.csv'))
    plot(results, osp.join(out_dir, 'benchmark.png'))
    table = format_table(results)
    print(f"\n{meta['date']}, {meta['machine']}, input short side "
          f"{args.short_side} (max {args.max_size}), {args.runs} runs after "
          f"{args.warmup} warm-up"
          f"{', channels-last' if args.channels_last else ''}\n")
    print(table)
    print(f"\nNote: {meta['note']}.\nWritten: {out_dir}/benchmark."
          '{json,csv,png}')
    return results


if __name__ == '__main__':
    main()
