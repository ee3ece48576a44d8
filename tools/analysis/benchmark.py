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
built with random weights and measured by ``benchmarking.measure`` in a
fresh spawned process (its own peak memory), which returns its row:
params, GMACs (``FlopCounterMode``, 1 multiply-add = 1 MAC), latency at
batch 1 (each call timed, an accelerator synchronised; median and p90
after warm-up),
throughput at ``--batch-size``, peak memory (RSS on the CPU,
``max_memory_allocated`` on CUDA), QueryPose's time per module group (the
children of the estimator, its head and its keypoint decoders) and its
dtype/layout conversions (``torch.profiler``) and, with ``--train-step``,
its training iteration at ``--batch-size`` with and without autocast.
Writes ``benchmark.{json,csv,png}`` into ``--out-dir`` and prints the
table and the per-round latencies (rows by rounds).
With random weights, post-processing that depends on the predictions
(DEKR's and RTMO's NMS/grouping) is not representative. A row whose
measurement fails is written with its error, and the tool then exits with
status 1; counts and sizes below 1 are refused before anything runs.
"""
import argparse
import dataclasses
import os
import os.path as osp
import platform
import sys
import time
import traceback
from typing import Dict

from benchmarking import (MODES, SPECS, ExportedModel, Settings,
                          compare_latencies, export_for_benchmark,
                          format_table, in_fresh_process, measure, split_entry,
                          write_results)

from querypose_mm.engine.cli import (non_negative_int, positive_int,
                                     warn_if_bf16_capped)
from querypose_mm.utils import check_output_dir

DEFAULT_MODELS = ['querypose-r50', 'edpose-r50', 'rtmo-l', 'dekr-hrnet-w32']


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
    args = parser.parse_args(argv)
    for entry in args.models:
        try:
            split_entry(entry_with_mode(entry, args))
        except ValueError as error:
            parser.error(str(error))
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


def measure_row(entry: str, settings: Settings, out_dir: str,
                exported: Dict[str,
                               ExportedModel], latency_only: bool) -> dict:
    """The row of ``entry``, measured by :func:`measure` in a fresh
    process; a runtime row's model is exported first, once per run
    (``exported`` holds those done). A failure is the row's ``error``."""
    name, mode = split_entry(entry)
    try:
        if MODES[mode].runtime and name not in exported:
            print(f'exporting {name} to ONNX ...', flush=True)
            exported[name] = in_fresh_process(
                export_for_benchmark, name, osp.join(out_dir, f'{name}.onnx'),
                settings)
        return in_fresh_process(measure, entry, settings, latency_only,
                                exported.get(name))
    except Exception as error:
        traceback.print_exception(error)
        message = f'{type(error).__name__}: {error}'.strip().splitlines()[0]
        return dict(
            model=entry,
            description=SPECS[name].description,
            mode=mode,
            error=message[:300])


def median_round(rounds: list) -> dict:
    """The first round's figures with the latency of the median round
    (the later rounds measure the latency alone)."""
    if 'error' in rounds[0]:
        return rounds[0]  # the figures besides the latency are missing
    ok = [r for r in rounds if 'error' not in r]
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
    settings = Settings(
        **{
            field.name: getattr(args, field.name)
            for field in dataclasses.fields(Settings)
        })
    entries = [entry_with_mode(entry, args) for entry in args.models]
    if args.device == 'cpu':
        for entry in entries:
            if MODES[split_entry(entry)[1]].pytorch_bf16:
                warn_if_bf16_capped(entry)
    rounds = {entry: [] for entry in entries}
    exported = {}
    for round_index in range(args.rounds):
        for entry in entries:
            print(
                f'measuring {entry} (round {round_index + 1}/'
                f'{args.rounds}) ...',
                flush=True)
            rounds[entry].append(
                measure_row(entry, settings, out_dir, exported, round_index
                            > 0))
    results = [median_round(rounds[entry]) for entry in entries]
    meta = dict(
        date=time.strftime('%Y-%m-%d'),
        machine=f'{platform.machine()}, {os.cpu_count()} CPUs, '
        f'{platform.platform()}',
        **dataclasses.asdict(settings),
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
