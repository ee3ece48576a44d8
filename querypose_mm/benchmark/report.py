"""The benchmark's table (text), CSV, JSON and bar chart (PNG)."""
import csv
import json
import os
import os.path as osp
from typing import Dict, List

CSV_FIELDS = [
    'model', 'params_m', 'gmacs', 'latency_ms_median', 'latency_ms_p90',
    'throughput_img_s', 'throughput_batch', 'peak_mem_mb', 'input_hw',
    'device', 'torch', 'mmcv', 'threads', 'channels_last', 'autocast', 'error'
]


def format_table(results: List[dict]) -> str:
    """A markdown table, each QueryPose model's time per module group and
    training step, and the QueryPose-R50 / ED-Pose-R50 latency ratio."""
    header = ('model', 'params (M)', 'GMACs', 'lat. median (ms)',
              'lat. p90 (ms)', 'img/s', 'peak mem (MB)')
    rows = [header]
    for r in results:
        if 'error' in r:
            rows.append(
                (r['model'], 'failed: ' + r['error'], '', '', '', '', ''))
            continue
        rows.append(
            (r['model'], f"{r['params_m']:.1f}", f"{r['gmacs']:.1f}",
             f"{r['latency_ms_median']:.0f}", f"{r['latency_ms_p90']:.0f}",
             f"{r['throughput_img_s']:.2f} (b{r['throughput_batch']})",
             f"{r['peak_mem_mb']:.0f}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(7)]
    lines = [
        '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(row, widths)) + ' |'
        for row in rows
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
                text += (f"{r['model']} train step (batch "
                         f"{step['batch_size']}), amp {step['amp']}: "
                         f"{step['iter_s_median']:.2f} s/iter, peak "
                         f"{step['peak_mem_mb']:.0f} MB\n")
    ours = {r['model']: r for r in results if 'error' not in r}
    if 'querypose-r50' in ours and 'edpose-r50' in ours:
        ratio = ours['querypose-r50']['latency_ms_median'] / ours[
            'edpose-r50']['latency_ms_median']
        text += (f'\nQueryPose-R50 / ED-Pose-R50 latency ratio: '
                 f'{ratio:.2f}\n')
    return text


def _replace_atomically(path: str, write) -> None:
    """``write(partial_path)``, then rename: a reader never sees half."""
    partial = path + '.partial' + osp.splitext(path)[1]
    write(partial)
    os.replace(partial, path)


def _plot(results: List[dict], path: str) -> None:
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
    _replace_atomically(path, lambda p: fig.savefig(p, dpi=100))
    plt.close(fig)


def write_results(results: List[dict], meta: Dict, out_dir: str) -> None:
    """``benchmark.json`` (meta + results), ``benchmark.csv`` and
    ``benchmark.png`` in ``out_dir``."""

    def write_json(path):
        with open(path, 'w') as f:
            json.dump(dict(meta=meta, results=results), f, indent=1)

    def write_csv(path):
        with open(path, 'w') as f:
            writer = csv.DictWriter(f, CSV_FIELDS, extrasaction='ignore')
            writer.writeheader()
            writer.writerows(results)

    _replace_atomically(osp.join(out_dir, 'benchmark.json'), write_json)
    _replace_atomically(osp.join(out_dir, 'benchmark.csv'), write_csv)
    _plot(results, osp.join(out_dir, 'benchmark.png'))
