"""The benchmark's table (text), CSV, JSON and bar chart (PNG)."""
import csv
import json
import os
import os.path as osp
from typing import Dict, List

CSV_FIELDS = [
    'model', 'params_m', 'gmacs', 'latency_ms_median', 'latency_ms_p90',
    'throughput_img_s', 'throughput_batch', 'peak_mem_mb', 'input_hw',
    'device', 'torch', 'mmcv', 'threads', 'mode', 'channels_last', 'autocast',
    'edpose_ratio', 'edpose_ratio_to', 'error'
]
EDPOSE = 'edpose-r50'


def add_edpose_ratios(results: List[dict]) -> None:
    """Each row's latency over ED-Pose-R50's, in the same mode when that
    row was measured (``edpose_ratio_to`` says which), else in fp32."""
    edpose = {
        r.get('mode', 'fp32'): r['latency_ms_median']
        for r in results
        if r['model'].split('@')[0] == EDPOSE and 'error' not in r
    }
    for r in results:
        if 'error' in r:
            continue
        mode = r.get('mode', 'fp32')
        reference = mode if mode in edpose else 'fp32'
        if reference in edpose:
            r['edpose_ratio'] = r['latency_ms_median'] / edpose[reference]
            r['edpose_ratio_to'] = f'{EDPOSE}@{reference}'


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
    by_model = {r['model']: r for r in results if 'error' not in r}
    for mode in ('fp32', 'autocast', 'channels-last'):
        fast = by_model.get(f'querypose-r50@{mode}')
        if fast is not None and 'querypose-r50@onnxruntime' in by_model:
            ort = by_model['querypose-r50@onnxruntime']
            text += (
                f'\nQueryPose-R50 ONNX Runtime / PyTorch {mode}: '
                f"{ort['latency_ms_median'] / fast['latency_ms_median']:.2f}")
    if 'querypose-tiny@fp32' in by_model and \
            'querypose-tiny@onnxruntime' in by_model:
        ratio = by_model['querypose-tiny@onnxruntime']['latency_ms_median'] / \
            by_model['querypose-tiny@fp32']['latency_ms_median']
        text += f'\nQuick-start model ONNX Runtime / PyTorch fp32: {ratio:.2f}'
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
