"""The benchmark's table (text), CSV, JSON and bar chart (PNG)."""
import csv
import os.path as osp
from typing import Dict, List

import numpy as np

from querypose_mm.utils import atomic_output, dump_json_atomically
from .models import PYTORCH_MODES, RUNTIME_MODES
from .profiling import CONVERSION_COUNT, CONVERSION_TIME

CSV_FIELDS = [
    'model', 'params_m', 'gmacs', 'latency_ms_median', 'latency_ms_p90',
    'throughput_img_s', 'throughput_batch', 'peak_mem_mb', 'input_hw',
    'device', 'torch', 'mmcv', 'threads', 'mode', 'channels_last', 'autocast',
    'decoded_queries', 'edpose_ratio', 'edpose_ratio_to', 'error'
]
EDPOSE = 'edpose-r50'
# breakdown entries that are not a share of the step's time
CONVERSIONS = (CONVERSION_TIME, CONVERSION_COUNT)


def add_edpose_ratios(results: List[dict]) -> None:
    """Each row's latency over ED-Pose-R50's, in the same mode when that
    row was measured (``edpose_ratio_to`` says which), else in fp32.

    With several rounds it is :func:`round_ratio`'s.
    """
    edpose = {
        r.get('mode', 'fp32'): r
        for r in results
        if r['model'].split('@')[0] == EDPOSE and 'error' not in r
    }
    for r in results:
        if 'error' in r:
            continue
        mode = r.get('mode', 'fp32')
        reference = mode if mode in edpose else 'fp32'
        if reference not in edpose:
            continue
        r['edpose_ratio'] = round_ratio(r, edpose[reference])
        r['edpose_ratio_to'] = f'{EDPOSE}@{reference}'


def round_ratio(row: dict, reference: dict) -> float:
    """Latency of ``row`` over ``reference``: with interleaved rounds, the
    median of the ratios within each round (the two measured minutes
    apart), which a slow spell of the machine affects less than a ratio of
    medians taken from different rounds."""
    rounds, ref_rounds = (row.get('rounds_latency_ms'),
                          reference.get('rounds_latency_ms'))
    if rounds and ref_rounds and len(rounds) == len(ref_rounds):
        return float(np.median([a / b for a, b in zip(rounds, ref_rounds)]))
    return row['latency_ms_median'] / reference['latency_ms_median']


def format_table(results: List[dict]) -> str:
    """A markdown table (with each row's latency ratio to ED-Pose-R50),
    each QueryPose model's time per module group and training step."""
    add_edpose_ratios(results)
    header = ('model', 'params (M)', 'GMACs', 'lat. median (ms)',
              'lat. p90 (ms)', 'img/s', 'peak mem (MB)', 'x ED-Pose-R50')
    rows = [header]
    for r in results:
        if 'error' in r:
            rows.append(
                (r['model'], 'failed: ' + r['error'], '', '', '', '', '', ''))
            continue
        throughput = '-' if r['throughput_img_s'] is None else (
            f"{r['throughput_img_s']:.2f} (b{r['throughput_batch']})")
        ratio = '-'
        if 'edpose_ratio' in r:
            ratio = f"{r['edpose_ratio']:.2f}"
            if r['edpose_ratio_to'] != f"{EDPOSE}@{r.get('mode', 'fp32')}":
                ratio += f" (vs {r['edpose_ratio_to']})"
        rows.append(
            (r['model'], f"{r['params_m']:.1f}", f"{r['gmacs']:.1f}",
             f"{r['latency_ms_median']:.0f}", f"{r['latency_ms_p90']:.0f}",
             throughput, f"{r['peak_mem_mb']:.0f}", ratio))
    widths = [
        max(len(str(row[i])) for row in rows) for i in range(len(header))
    ]
    lines = [
        '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(row, widths)) + ' |'
        for row in rows
    ]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    text = '\n'.join(lines)
    for r in results:
        if 'breakdown_ms' in r:
            text += f"\n\n{r['model']}: time per module group (ms, batch 1)\n"
            groups = {
                k: v
                for k, v in r['breakdown_ms'].items() if k not in CONVERSIONS
            }
            total = sum(groups.values())
            for group, ms in sorted(groups.items(), key=lambda kv: -kv[1]):
                text += f'  {group:<44} {ms:9.1f}  {100 * ms / total:5.1f} %\n'
            for key in CONVERSIONS:
                if key in r['breakdown_ms']:
                    text += f"  {key:<44} {r['breakdown_ms'][key]:9.1f}\n"
        for step in r.get('train_step', []):
            if 'error' in step:
                text += f"{r['model']} train step, amp {step['amp']}: " \
                        f"not supported ({step['error'][:120]})\n"
            else:
                text += (f"{r['model']} train step (batch "
                         f"{step['batch_size']}), amp {step['amp']}: "
                         f"{step['iter_s_median']:.2f} s/iter, peak "
                         f"{step['peak_mem_mb']:.0f} MB\n")
    by_model = {r['model']: r for r in results if 'error' not in r}
    for model in ('querypose-r50', 'querypose-tiny'):
        for other in (*PYTORCH_MODES[1:], *RUNTIME_MODES):
            pair = (f'{model}@{other}', f'{model}@fp32')
            if all(entry in by_model for entry in pair):
                ratio = round_ratio(*(by_model[entry] for entry in pair))
                text += f'\n{pair[0]} / {pair[1]}: {ratio:.2f}'
    return text + '\n'


def compare_latencies(rounds: Dict[str, List[dict]]) -> str:
    """Every row's batch-1 latency (median, ms) in each round, rounds as
    columns: a failed round blank, a row that failed in every round left
    out."""
    latencies = {
        entry: [r.get('latency_ms_median') for r in results]
        for entry, results in rounds.items()
        if any('error' not in r for r in results)
    }
    if not latencies:
        return ''
    num_rounds = max(map(len, latencies.values()))
    width = max(map(len, latencies))
    lines = [
        ' | '.join([''.ljust(width)] +
                   [f'round {i + 1}' for i in range(num_rounds)])
    ]
    for entry, row in latencies.items():
        row = row + [None] * (num_rounds - len(row))
        cells = ['' if ms is None else f'{ms:.1f}' for ms in row]
        lines.append(' | '.join([entry.ljust(width)] +
                                [cell.rjust(7) for cell in cells]).rstrip())
    title = 'latency, batch 1, in milliseconds (the median of each round)'
    return '\n'.join([title, *lines]) + '\n'


def _plot(results: List[dict], path: str) -> None:
    """Horizontal bars: latency (with the ratio to ED-Pose-R50 that
    :func:`add_edpose_ratios` put in the rows) and GMACs of every measured
    row, in the order measured."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ok = [r for r in results if 'error' not in r][::-1]
    fig, axes = plt.subplots(
        1, 2, figsize=(12, 1.2 + 0.42 * max(len(ok), 1)), sharey=True)
    names = [r['model'] for r in ok]
    latency = [r['latency_ms_median'] / 1000 for r in ok]
    colors = [
        'tab:blue' if r['model'].startswith('querypose') else 'tab:gray'
        for r in ok
    ]
    axes[0].barh(names, latency, color=colors)
    axes[0].set_xlabel('latency, batch 1 (s, median)')
    for i, r in enumerate(ok):
        if 'edpose_ratio' in r:
            axes[0].text(
                latency[i],
                i,
                f" {r['edpose_ratio']:.2f}x ED-Pose",
                va='center',
                fontsize=8)
    axes[0].set_xlim(0, max(latency, default=1) * 1.35)
    axes[1].barh(names, [r['gmacs'] for r in ok], color='tab:orange')
    axes[1].set_xlabel('GMACs')
    if ok:
        r = ok[-1]
        fig.suptitle(f"input {r['input_hw'][0]}x{r['input_hw'][1]}, "
                     f"{r['device']}, torch {r['torch']}, mmcv {r['mmcv']}")
    fig.tight_layout()
    with atomic_output(path) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)


def write_results(results: List[dict], meta: Dict, out_dir: str) -> None:
    """``benchmark.json`` (meta + results), ``benchmark.csv`` and
    ``benchmark.png`` in ``out_dir``, with each row's ratio to
    ED-Pose-R50."""
    add_edpose_ratios(results)

    dump_json_atomically(
        dict(meta=meta, results=results), osp.join(out_dir, 'benchmark.json'))
    with atomic_output(osp.join(out_dir, 'benchmark.csv')) as partial:
        with open(partial, 'w') as f:
            writer = csv.DictWriter(f, CSV_FIELDS, extrasaction='ignore')
            writer.writeheader()
            writer.writerows(results)
    _plot(results, osp.join(out_dir, 'benchmark.png'))
