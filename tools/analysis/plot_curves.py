"""Plot training curves from mmengine's iteration-based logs.

    python tools/analysis/plot_curves.py WORK_DIR_OR_SCALARS_JSON
        [--keys loss s5.loss_kpt ...] [--out curves.png] [--title T]

Reads ``<work_dir>/<time>/vis_data/scalars.json`` (the newest run when a work
dir is given), which mmengine's ``LocalVisBackend`` writes one JSON line per
logged iteration (training scalars with ``step`` = iteration; validation
metrics such as ``coco/AP`` with ``step`` = the iteration they were computed
at). Each key gets its own panel; the PNG is written next to the log unless
``--out`` says otherwise. mmpose's analyze_logs.py expects epoch-based logs,
which QueryPose's iteration-based schedules do not write.
"""
import argparse
import glob
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

from querypose_mm.utils import atomic_output


def find_scalars(path: str) -> str:
    """The scalars.json of a work dir's newest run, or ``path`` itself."""
    if osp.isfile(path):
        return path
    found = sorted(glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
    if not found:
        raise FileNotFoundError(
            f'no <time>/vis_data/scalars.json under {path!r}: pass the work '
            'dir of a training run (mmengine writes it with LocalVisBackend) '
            'or the scalars.json file itself')
    return found[-1]


def read_curves(scalars_json: str) -> Dict[str, List[Tuple[int, float]]]:
    """Every scalar key -> [(step, value), ...] in the order logged."""
    curves = defaultdict(list)
    with open(scalars_json) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f'{scalars_json}:{number} is not a JSON '
                                 'line; is the file a mmengine scalars.json?')
            step = record.get('step', record.get('iter'))
            for key, value in record.items():
                if key not in ('step', 'iter', 'epoch') and isinstance(
                        value, (int, float)):
                    curves[key].append((step, float(value)))
    return dict(curves)


def plot(curves: Dict[str, List[Tuple[int, float]]],
         keys: Sequence[str],
         out: str,
         title: str = '') -> None:
    missing = [k for k in keys if k not in curves]
    if missing:
        raise KeyError(f'keys {missing} are not in the log; it has '
                       f'{sorted(curves)}')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(
        len(keys), 1, figsize=(7, 2.6 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        steps, values = zip(*curves[key])
        ax.plot(steps, values, marker='o' if len(steps) < 20 else None)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel('iteration')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_output(out) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('path', help='work dir or scalars.json')
    parser.add_argument(
        '--keys',
        nargs='+',
        default=None,
        help='scalars to plot (default: loss, and coco/AP if logged)')
    parser.add_argument('--out', help='PNG to write')
    parser.add_argument('--title', help='figure title (default: the log)')
    args = parser.parse_args(argv)
    scalars = find_scalars(args.path)
    curves = read_curves(scalars)
    keys = args.keys or [k for k in ('loss', 'coco/AP') if k in curves]
    out = args.out or osp.join(osp.dirname(scalars), 'curves.png')
    plot(curves, keys, out, title=args.title or scalars)
    print(f'{", ".join(keys)} from {scalars} -> {out}')
    return out


if __name__ == '__main__':
    main()
