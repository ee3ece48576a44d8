"""Check a CUDA machine for QueryPose before the first real run (minutes).

    python tools/misc/check_gpu.py [--checkpoint CKPT] [--iters 5]
        [--work-dir DIR] [--skip-latency]

Prints one row per check, in this order, and exits 1 if one fails:

1. the GPUs, and that the installed torch has kernels for them;
2. mmcv's CUDA RoIAlign and sigmoid focal loss against its CPU kernels
   (``tools/misc/check_mmcv_ops.py --ops cuda``);
3. ``--iters`` training iterations of the small quick-start config
   (``configs/querypose/coco/querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-
   256x427.py`` on ``data/coco_mini``) through ``tools/train.py`` on one
   GPU in fp32 and with ``--amp``, and through ``tools/dist_train.sh`` on 2
   GPUs where there are 2: the losses must be finite;
4. with ``--checkpoint`` (the quick start's, ``tools/quickstart.py``): its
   predictions on 4 images of ``data/coco_mini/val2017`` on CUDA against
   the CPU (largest keypoint and score differences);
5. the latency of QueryPose R50-FPN (random weights) at 800x1333, batch 1,
   in fp32 and under fp16 autocast (median of 10 after 3 warm-up runs).

Without a CUDA GPU it prints one line saying so and exits 1.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, NamedTuple, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL_CONFIG = osp.join(
    REPO_ROOT, 'configs/querypose/coco/'
    'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')
COCO_MINI = osp.join(REPO_ROOT, 'data', 'coco_mini')
# what a GPU may differ from the CPU by on the quick-start checkpoint:
# float rounding moves keypoints by far less than a pixel, a different
# person or a swapped rank by far more
MAX_KEYPOINT_DIFF_PX = 0.5
MAX_SCORE_DIFF = 1e-3


class Row(NamedTuple):
    """One check's line of the table."""
    check: str
    ok: bool
    result: str
    seconds: float


def run_check(name: str, check: Callable[[], str]) -> Row:
    """``check()``'s result as a row; an exception fails the row with its
    message (first line)."""
    start = time.perf_counter()
    try:
        result, ok = check(), True
    except Exception as e:  # noqa: B902  (every failure goes in the table)
        first_line = (str(e).splitlines() or [''])[0]
        result, ok = f'{type(e).__name__}: {first_line}', False
    return Row(name, ok, result, time.perf_counter() - start)


def format_table(rows: List[Row]) -> str:
    """The rows as an aligned text table."""
    lines = [('check', 'ok', 'result', 's')
             ] + [(row.check, 'yes' if row.ok else 'FAIL', row.result,
                   f'{row.seconds:.0f}') for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return '\n'.join(
        '  '.join(cell.ljust(width)
                  for cell, width in zip(line[:3], widths)) + '  ' + line[3]
        for line in lines)


def read_losses(work_dir: str) -> List[float]:
    """The logged total loss of each training iteration, from mmengine's
    ``<work_dir>/<timestamp>/vis_data/scalars.json``."""
    logs = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise FileNotFoundError(f'no training log under {work_dir}')
    with open(logs[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r['loss'] for r in records if 'loss' in r]


def train_small_config(iters: int, amp: bool, gpus: int, work_dir: str) -> str:
    """``iters`` iterations of the small config; the first and last loss,
    which must be finite."""
    options = [
        '--work-dir', work_dir, '--no-validate', '--cfg-options',
        f'train_dataloader.dataset.data_root={COCO_MINI}',
        f'train_cfg.max_iters={iters}', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=100000', 'randomness.seed=0'
    ]
    if amp:
        options.insert(0, '--amp')
    if gpus > 1:
        cmd = [
            'bash',
            osp.join(REPO_ROOT, 'tools', 'dist_train.sh'), SMALL_CONFIG,
            str(gpus)
        ] + options
    else:
        cmd = [
            sys.executable,
            osp.join(REPO_ROOT, 'tools', 'train.py'), SMALL_CONFIG
        ] + options
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHON=sys.executable),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-1:] or ['(no output)']
        raise RuntimeError(f'training exited {proc.returncode}: {tail[0]}')
    losses = read_losses(work_dir)
    if len(losses) < iters or not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f'losses {losses}')
    return (f'{len(losses)} iterations, loss {losses[0]:.2f} -> '
            f'{losses[-1]:.2f}')


def compare_checkpoint(checkpoint: str) -> str:
    """The checkpoint's predictions on CUDA against the CPU."""
    import numpy as np
    import torch
    from benchmarking.models import as_batch, load_inputs

    from mmpose.apis import init_model
    samples = load_inputs(short_side=256, max_size=427, count=4)
    preds = {}
    for device in ('cpu', 'cuda'):
        model = init_model(SMALL_CONFIG, checkpoint, device=device)
        with torch.no_grad():
            preds[device] = model.test_step(as_batch(samples))
    keypoint_diff = score_diff = 0.
    for cpu, gpu in zip(preds['cpu'], preds['cuda']):
        cpu, gpu = cpu.pred_instances, gpu.pred_instances
        keypoint_diff = max(keypoint_diff,
                            float(np.abs(cpu.keypoints - gpu.keypoints).max()))
        score_diff = max(
            score_diff,
            float(np.abs(cpu.keypoint_scores - gpu.keypoint_scores).max()))
    result = (f'{len(samples)} images: keypoints within {keypoint_diff:.3g} '
              f'px, scores within {score_diff:.2g} of the CPU')
    if keypoint_diff > MAX_KEYPOINT_DIFF_PX or score_diff > MAX_SCORE_DIFF:
        raise AssertionError(result)
    return result


def r50_latency(fp16: bool) -> str:
    """Median latency of QueryPose R50-FPN at 800x1333, batch 1."""
    import contextlib

    import torch
    from benchmarking.measure import latency_figures, time_calls
    from benchmarking.models import as_batch, build_model, load_inputs
    model, _ = build_model('querypose-r50', 'cuda')
    batch = as_batch(load_inputs(short_side=800, max_size=1333, count=1))
    precision = torch.autocast('cuda', dtype=torch.float16) if fp16 \
        else contextlib.nullcontext()

    def predict():
        with torch.no_grad(), precision:
            model.test_step(batch)

    median = latency_figures(time_calls(predict, runs=10,
                                        warmup=3))['latency_ms_median']
    return f'{median:.1f} ms (median of 10), {torch.cuda.get_device_name()}'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--checkpoint',
        help='the quick-start checkpoint, to compare its CUDA and CPU '
        'predictions (skipped without)')
    parser.add_argument(
        '--iters', type=int, default=5, help='training iterations per run')
    parser.add_argument(
        '--work-dir',
        help='where the training runs write (default: a temporary folder)')
    parser.add_argument(
        '--skip-latency', action='store_true', help='skip the R50 latency')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print(
            f'check_gpu: torch {torch.__version__} sees no CUDA GPU (CUDA '
            f'{torch.version.cuda or "none: a CPU build"}); run this on the '
            'GPU machine',
            file=sys.stderr)
        return 1
    sys.path[:0] = [
        osp.dirname(osp.abspath(__file__)),
        osp.join(REPO_ROOT, 'tools', 'analysis')
    ]
    from check_mmcv_ops import check_cuda_ops, check_gpus
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='check_gpu_')
    runs = [(f'train {args.iters} iters fp32, 1 GPU', False, 1),
            (f'train {args.iters} iters AMP, 1 GPU', True, 1)]
    if torch.cuda.device_count() > 1:
        runs += [(f'train {args.iters} iters fp32, 2 GPUs', False, 2),
                 (f'train {args.iters} iters AMP, 2 GPUs', True, 2)]
    checks = [('GPUs and torch', check_gpus),
              ('mmcv CUDA ops vs CPU', check_cuda_ops)]
    checks += [(name, lambda amp=amp, gpus=gpus, i=i: train_small_config(
        args.iters, amp, gpus, osp.join(work_dir, f'train{i}')))
               for i, (name, amp, gpus) in enumerate(runs)]
    if args.checkpoint:
        checks.append(('checkpoint CUDA vs CPU',
                       lambda: compare_checkpoint(args.checkpoint)))
    if not args.skip_latency:
        checks += [('R50 800x1333 fp32', lambda: r50_latency(fp16=False)),
                   ('R50 800x1333 fp16', lambda: r50_latency(fp16=True))]
    rows = []
    for name, check in checks:
        rows.append(run_check(name, check))
        print(
            f'[check_gpu] {name}: {"ok" if rows[-1].ok else "FAILED"}',
            flush=True)
    print(format_table(rows))
    return 0 if all(row.ok for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
