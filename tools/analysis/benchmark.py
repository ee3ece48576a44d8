"""Side-by-side inference benchmark: QueryPose and mmpose's multi-person peers.

    python tools/analysis/benchmark.py [--models querypose-r50 edpose-r50 ...]
        [--short-side 800] [--max-size 1333] [--runs 10] [--warmup 2]
        [--batch-size 2] [--device cpu|cuda] [--train-step] [--channels-last]
        [--autocast]
        [--quick] [--out-dir work_dirs/benchmark]

Each model (``querypose_mm.benchmark.SPECS``) is built with random weights
and measured in a fresh subprocess (its own peak memory): params, GMACs
(``FlopCounterMode``, 1 multiply-add = 1 MAC), latency at batch 1 (median and
p90 after warm-up), throughput at ``--batch-size``, peak memory (RSS on the
CPU, ``max_memory_allocated`` on CUDA), QueryPose's time per module group and,
with ``--train-step``, its training iteration at ``--batch-size`` with and
without autocast. Writes ``benchmark.{json,csv,png}`` into ``--out-dir`` and
prints the table. With random weights, post-processing that depends on the
predictions (DEKR's and RTMO's NMS/grouping) is not representative.
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time

from querypose_mm.benchmark import SPECS, format_table, measure, write_results

DEFAULT_MODELS = ['querypose-r50', 'edpose-r50', 'rtmo-l', 'dekr-hrnet-w32']
MEASURE_OPTIONS = ('short_side', 'max_size', 'runs', 'warmup', 'batch_size',
                   'device', 'threads')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models',
        nargs='+',
        default=DEFAULT_MODELS,
        choices=sorted(SPECS),
        help='in this order')
    parser.add_argument('--short-side', type=int, default=800)
    parser.add_argument('--max-size', type=int, default=1333)
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--batch-size',
        type=int,
        default=2,
        help='of the throughput and the training step')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='convert every model to channels-last')
    parser.add_argument(
        '--autocast',
        action='store_true',
        help='inference under autocast (bf16 on the CPU, fp16 on CUDA)')
    parser.add_argument(
        '--train-step',
        action='store_true',
        help='also time QueryPose training iterations')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='for tests: short side 256, 2 runs, 1 warm-up')
    parser.add_argument('--out-dir', default='work_dirs/benchmark')
    parser.add_argument('--single', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.short_side = min(args.short_side, 256)
        args.max_size = min(args.max_size, 427)
        args.runs, args.warmup = min(args.runs, 2), min(args.warmup, 1)
    return args


def run_in_subprocess(name: str, args, out_dir: str) -> dict:
    cmd = [
        sys.executable,
        osp.abspath(__file__), '--single', name, '--out-dir', out_dir
    ]
    for option in MEASURE_OPTIONS:
        value = getattr(args, option)
        if value is not None:
            cmd += ['--' + option.replace('_', '-'), str(value)]
    cmd += ['--train-step'] * args.train_step
    cmd += ['--channels-last'] * args.channels_last
    cmd += ['--autocast'] * args.autocast
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-1:] or ['(no output)']
        return dict(
            model=name,
            description=SPECS[name].description,
            error=tail[0][:300])
    with open(osp.join(out_dir, f'{name}.json')) as f:
        return json.load(f)


def main(argv=None):
    args = parse_args(argv)
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    if args.single:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        result = measure(args.single, args.short_side, args.max_size,
                         args.runs, args.warmup, args.batch_size, args.device,
                         args.channels_last, args.train_step, args.autocast)
        path = osp.join(out_dir, f'{args.single}.json')
        with open(path + '.partial', 'w') as f:
            json.dump(result, f)
        os.replace(path + '.partial', path)
        return result

    results = []
    for name in args.models:
        print(f'measuring {name} ...', flush=True)
        results.append(run_in_subprocess(name, args, out_dir))
    meta = dict(
        date=time.strftime('%Y-%m-%d'),
        machine=f'{platform.machine()}, {os.cpu_count()} CPUs, '
        f'{platform.platform()}',
        **{option: getattr(args, option)
           for option in MEASURE_OPTIONS},
        channels_last=args.channels_last,
        autocast=args.autocast,
        macs_counter='torch.utils.flop_counter.FlopCounterMode (MACs)',
        note='random weights: NMS/grouping time of DEKR and RTMO is not '
        'representative of trained models')
    write_results(results, meta, out_dir)
    print(f"\n{meta['date']}, {meta['machine']}, input short side "
          f'{args.short_side} (max {args.max_size}), {args.runs} runs after '
          f"{args.warmup} warm-up{', channels-last' * args.channels_last}"
          f"{', autocast' * args.autocast}\n")
    print(format_table(results))
    print(f"\nNote: {meta['note']}.\nWritten: {out_dir}/benchmark."
          '{json,csv,png}')
    return results


if __name__ == '__main__':
    main()
