"""Side-by-side inference benchmark: QueryPose and mmpose's multi-person peers.

    python tools/analysis/benchmark.py [--models querypose-r50 edpose-r50 ...]
        [--short-side 800] [--max-size 1333] [--runs 10] [--warmup 2]
        [--batch-size 2] [--device cpu|cuda] [--train-step] [--mode MODE]
        [--rounds 1] [--threads N] [--quick] [--out-dir work_dirs/benchmark]

A model may carry a mode, ``NAME@MODE``: ``@fp32``, ``@autocast``
(inference under ``torch.autocast``: bf16 on the CPU, fp16 on CUDA),
``@channels-last``, ``@bf16`` (QueryPose's ``test_cfg.precision='bf16'``),
or ``@onnxruntime``, ``@openvino``, ``@openvino-bf16`` (QueryPose only:
exported once per model with ``tools/deployment/pytorch2onnx.py``'s code,
timed through ``QueryPoseOnnxRuntime`` / ``QueryPoseOpenVINO``, CPU).
``--mode`` sets the mode of the names without one. Every row gets its
latency ratio to ED-Pose-R50 in the same mode when that was measured in the
run, else to ED-Pose-R50 in fp32. ``--rounds R`` measures the whole list R
times, interleaved (A, B, A, B), and takes each ratio within a round; a
row's latency is its median round's, its other figures (params, GMACs,
throughput, memory, breakdown, training step) the first round's: the later
rounds time the latency alone.

Each model (``SPECS`` in ``tools/analysis/benchmarking/models.py``) is
built with random weights and measured in a fresh subprocess (its own peak
memory): params, GMACs (``FlopCounterMode``, 1 multiply-add = 1 MAC),
latency at batch 1 (``torch.utils.benchmark.Timer``; median and p90 after
warm-up), throughput at ``--batch-size``, peak memory (RSS on the CPU,
``max_memory_allocated`` on CUDA), QueryPose's time per module group and
its dtype/layout conversions (``torch.profiler``) and, with
``--train-step``, its training iteration at ``--batch-size`` with and
without autocast. Writes ``benchmark.{json,csv,png}`` into ``--out-dir`` and
prints the table and ``torch.utils.benchmark.Compare``'s per-round latencies.
With random weights, post-processing that depends on the predictions
(DEKR's and RTMO's NMS/grouping) is not representative. A row whose
measurement fails is written with its error, and the tool then exits with
status 1; counts and sizes below 1 are refused before anything runs.
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import time

from benchmarking import (MODES, RUNTIME_MODES, SPECS, compare_latencies,
                          format_table, measure, split_entry, write_results)

from querypose_mm.engine.cli import (non_negative_int, positive_int,
                                     warn_if_bf16_capped)
from querypose_mm.utils import check_output_dir, dump_json_atomically

DEFAULT_MODELS = ['querypose-r50', 'edpose-r50', 'rtmo-l', 'dekr-hrnet-w32']
MEASURE_OPTIONS = ('short_side', 'max_size', 'runs', 'warmup', 'batch_size',
                   'device', 'threads')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models',
        nargs='+',
        default=DEFAULT_MODELS,
        help=f'in this order; NAME or NAME@MODE, NAME in {sorted(SPECS)}, '
        f'MODE in {list(MODES)}')
    parser.add_argument(
        '--rounds',
        type=positive_int,
        default=1,
        help='measure the list this many times, interleaved')
    parser.add_argument('--short-side', type=positive_int, default=800)
    parser.add_argument('--max-size', type=positive_int, default=1333)
    parser.add_argument('--runs', type=positive_int, default=10)
    parser.add_argument('--warmup', type=non_negative_int, default=2)
    parser.add_argument(
        '--batch-size',
        type=positive_int,
        default=2,
        help='of the throughput and the training step')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threads',
        type=positive_int,
        default=None,
        help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument(
        '--mode',
        choices=MODES,
        default='fp32',
        help='the mode of the models given without one')
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
    parser.add_argument(
        '--latency-only', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--export', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for entry in args.models:
        try:
            split_entry(entry_with_mode(entry, args))
        except ValueError as error:
            parser.error(str(error))
    if not (args.single or args.export):
        try:
            check_output_dir(args.out_dir, '--out-dir')
        except OSError as error:
            parser.error(str(error))
    if args.quick:
        args.short_side = min(args.short_side, 256)
        args.max_size = min(args.max_size, 427)
        args.runs, args.warmup = min(args.runs, 2), min(args.warmup, 1)
    return args


def entry_with_mode(entry: str, args) -> str:
    """``NAME@MODE``, the mode from ``--mode`` when the entry has none."""
    return entry if '@' in entry else f'{entry}@{args.mode}'


def onnx_paths(name: str, out_dir: str) -> tuple:
    """The exported file of a model and its PyTorch figures."""
    return (osp.join(out_dir,
                     f'{name}.onnx'), osp.join(out_dir, f'{name}.export.json'))


def run_in_subprocess(entry: str, args, out_dir: str, exported: set,
                      latency_only: bool) -> dict:
    """Measure one row in a fresh process; a runtime row's model is
    exported first, once per run (``exported`` holds those done)."""
    name, mode = split_entry(entry)
    base = [sys.executable, osp.abspath(__file__), '--out-dir', out_dir]
    base += ['--latency-only'] * latency_only
    for option in MEASURE_OPTIONS:
        value = getattr(args, option)
        if value is not None:
            base += ['--' + option.replace('_', '-'), str(value)]
    base += ['--train-step'] * args.train_step
    steps = [base + ['--single', entry]]
    if mode in RUNTIME_MODES and name not in exported:
        steps.insert(0, base + ['--export', name])
    for cmd in steps:
        if '--export' in cmd:
            print(f'exporting {name} to ONNX ...', flush=True)
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            tail = proc.stdout.strip().splitlines()[-1:] or ['(no output)']
            return dict(
                model=entry,
                description=SPECS[name].description,
                mode=mode,
                error=tail[0][:300])
        if '--export' in cmd:
            exported.add(name)
    with open(osp.join(out_dir, f'{entry}.json')) as f:
        return json.load(f)


def run_single(args, out_dir: str) -> dict:
    """The ``--export NAME`` / ``--single NAME@MODE`` subprocess."""
    import torch
    from benchmarking import export_for_benchmark, measure_runtime
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export:
        onnx_file, exported_json = onnx_paths(args.export, out_dir)
        result = export_for_benchmark(args.export, onnx_file, args.short_side,
                                      args.max_size)
        dump_json_atomically(result, exported_json)
        return result
    entry = args.single
    name, mode = split_entry(entry)
    if mode in RUNTIME_MODES:
        onnx_file, exported_json = onnx_paths(name, out_dir)
        with open(exported_json) as f:
            exported = json.load(f)
        result = measure_runtime(entry, mode, onnx_file, exported,
                                 args.short_side, args.max_size, args.runs,
                                 args.warmup, args.batch_size,
                                 args.latency_only)
    else:
        result = measure(name, args.short_side, args.max_size, args.runs,
                         args.warmup, args.batch_size, args.device, mode,
                         args.train_step and not args.latency_only,
                         args.latency_only)
        result.update(model=entry, mode=mode)
    dump_json_atomically(result, osp.join(out_dir, f'{entry}.json'))
    return result


def median_round(rounds: list) -> dict:
    """The first round's figures with the latency of the median round
    (the later rounds measure the latency alone)."""
    ok = [r for r in rounds if 'error' not in r]
    if not ok:
        return rounds[0]
    median = sorted(
        ok, key=lambda r: r['latency_ms_median'])[(len(ok) - 1) // 2]
    result = dict(ok[0])
    result.update({k: v for k, v in median.items() if k.startswith('latency')})
    result['rounds_latency_ms'] = [r['latency_ms_median'] for r in ok]
    return result


def main(argv=None):
    args = parse_args(argv)
    out_dir = osp.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    if args.single or args.export:
        return run_single(args, out_dir)

    entries = [entry_with_mode(entry, args) for entry in args.models]
    if args.device == 'cpu':
        for entry in entries:
            if split_entry(entry)[1] in ('bf16', 'autocast'):
                warn_if_bf16_capped(entry)
    rounds = {entry: [] for entry in entries}
    exported = set()
    for round_index in range(args.rounds):
        for entry in entries:
            print(
                f'measuring {entry} (round {round_index + 1}/'
                f'{args.rounds}) ...',
                flush=True)
            rounds[entry].append(
                run_in_subprocess(entry, args, out_dir, exported, round_index
                                  > 0))
    results = [median_round(rounds[entry]) for entry in entries]
    meta = dict(
        date=time.strftime('%Y-%m-%d'),
        machine=f'{platform.machine()}, {os.cpu_count()} CPUs, '
        f'{platform.platform()}',
        **{option: getattr(args, option)
           for option in MEASURE_OPTIONS},
        rounds=args.rounds,
        macs_counter='torch.utils.flop_counter.FlopCounterMode (MACs)',
        note='random weights: NMS/grouping time of DEKR and RTMO is not '
        'representative of trained models')
    write_results(results, meta, out_dir)
    print(f"\n{meta['date']}, {meta['machine']}, input short side "
          f'{args.short_side} (max {args.max_size}), {args.runs} runs after '
          f"{args.warmup} warm-up, {args.rounds} round(s)\n")
    print(format_table(results))
    print(compare_latencies(rounds))
    print(f"\nNote: {meta['note']}.\nWritten: {out_dir}/benchmark."
          '{json,csv,png}')
    failed = [r['model'] for r in results if 'error' in r]
    if failed:
        print(
            f'FAILED: {", ".join(failed)} could not be measured (see the '
            'error column)',
            file=sys.stderr)
        sys.exit(1)
    return results


if __name__ == '__main__':
    main()
