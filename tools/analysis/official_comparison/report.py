"""The verdict of a comparison: differences, thresholds, table, exit code."""
from typing import Dict, List, NamedTuple, Sequence, Tuple

from torch import Tensor

# (query, gt) pairs of one stage: flat query index into B * N, index of the
# person in the batch's concatenated ground truth
Pairs = List[Tuple[int, int]]


class Thresholds(NamedTuple):
    """What counts as equal.

    Attributes:
        loss_rel: Of every loss term, ``|a - b| / max(|a|, |b|)``.
        grad_rel: Of the gradients w.r.t. each feature level, the largest
            difference over the largest entry.
        bn_rel: Of each BatchNorm running statistic, the same ratio.
        keypoint_px: Of the inferred keypoints, the largest difference in
            input pixels.
        score: Of the inferred pose scores (in [0, 1]), the largest
            difference.
    """
    loss_rel: float = 1e-5
    grad_rel: float = 1e-5
    bn_rel: float = 1e-5
    keypoint_px: float = 1e-6
    score: float = 1e-6


ACCEPTANCE = Thresholds()


class VersionResult(NamedTuple):
    """What one version (light or full) gave on both sides.

    Attributes:
        version: ``'light'`` or ``'full'``.
        losses: ``'s{stage}.{term}'`` -> (official, ours), the terms with
            their loss weights.
        matches: Per stage, (official pairs, our pairs), each sorted.
        feature_grads: Per feature level, the largest gradient difference
            over the largest official entry.
        bn_stats: Per BatchNorm running statistic (our key), the same
            ratio after the training step.
        keypoints_px: Largest difference of the inferred keypoints, in
            input pixels, over every query.
        keypoints_extent: Largest absolute inferred keypoint coordinate of
            the official side, in input pixels (the scale of
            ``keypoints_px``).
        scores: Largest difference of the inferred pose scores.
        seconds: Wall time of both sides, training and inference.
    """
    version: str
    losses: Dict[str, Tuple[float, float]]
    matches: List[Tuple[Pairs, Pairs]]
    feature_grads: List[float]
    bn_stats: Dict[str, float]
    keypoints_px: float
    keypoints_extent: float
    scores: float
    seconds: float


class Check(NamedTuple):
    """One figure against its threshold."""
    version: str
    name: str
    value: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.value <= self.threshold


def relative_difference(a: float, b: float) -> float:
    """``|a - b| / max(|a|, |b|)``; 0 when both are 0."""
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


def ratio_to_largest(reference: Tensor, other: Tensor) -> float:
    """The largest ``|reference - other|`` over the largest
    ``|reference|``; 0 when both are all zeros, inf when only ``other``
    has non-zeros."""
    diff = (reference - other).abs().max().item() if reference.numel() else 0.
    scale = reference.abs().max().item() if reference.numel() else 0.
    if scale > 0:
        return diff / scale
    return 0.0 if diff == 0 else float('inf')


def max_abs_difference(a: Tensor, b: Tensor) -> float:
    """The largest ``|a - b|`` (0 for empty tensors)."""
    return (a - b).abs().max().item() if a.numel() else 0.0


def checks(result: VersionResult,
           thresholds: Thresholds = ACCEPTANCE) -> List[Check]:
    """Every figure of ``result`` against ``thresholds``; a stage whose
    matches differ gives a check of value 1 against 0."""
    v = result.version
    out = [
        Check(v, f'loss {name}', relative_difference(*values),
              thresholds.loss_rel) for name, values in result.losses.items()
    ]
    out += [
        Check(v, f'matches s{stage}', float(official != ours), 0.0)
        for stage, (official, ours) in enumerate(result.matches)
    ]
    out += [
        Check(v, f'gradient P{level + 2}', ratio, thresholds.grad_rel)
        for level, ratio in enumerate(result.feature_grads)
    ]
    if result.bn_stats:
        key = max(result.bn_stats, key=result.bn_stats.get)
        out.append(
            Check(v, f'BatchNorm {key}', result.bn_stats[key],
                  thresholds.bn_rel))
    out.append(
        Check(v, 'inference keypoints (px)', result.keypoints_px,
              thresholds.keypoint_px))
    out.append(Check(v, 'inference scores', result.scores, thresholds.score))
    return out


def format_version(result: VersionResult,
                   thresholds: Thresholds = ACCEPTANCE) -> str:
    """The tables of one version: every loss term, the matches of every
    stage, the gradients, and each figure's verdict."""
    lines = [
        f'== {result.version} version ({result.seconds:.0f} s) ==',
        f'{"loss term":<16}{"official":>16}{"ours":>16}{"rel. diff":>12}'
    ]
    for name, (official, ours) in result.losses.items():
        diff = relative_difference(official, ours)
        mark = '' if diff <= thresholds.loss_rel else '  <-'
        lines.append(f'{name:<16}{official:>16.9g}{ours:>16.9g}'
                     f'{diff:>12.2e}{mark}')
    lines.append('stage  same  matched (query, gt) pairs, official')
    for stage, (official, ours) in enumerate(result.matches):
        same = 'yes' if official == ours else 'NO'
        lines.append(f's{stage:<6}{same:<6}{official}' +
                     ('' if official == ours else f'; ours {ours}'))
    lines.append('gradients w.r.t. the features, max |diff| / max |g|: ' +
                 ', '.join(f'P{i + 2} {r:.2e}'
                           for i, r in enumerate(result.feature_grads)))
    found = checks(result, thresholds)
    worst = [
        max((c for c in found if c.name.startswith(prefix)),
            key=lambda c: c.value)
        for prefix in ('loss', 'matches', 'gradient')
    ]
    for check in worst + [
            c for c in found if c.name.startswith(('BatchNorm', 'inference'))
    ]:
        lines.append(f'worst {_describe(check)} ' +
                     ('ok' if check.passed else 'FAILS'))
    lines.append('largest |official keypoint coordinate|: '
                 f'{result.keypoints_extent:.4g} px')
    return '\n'.join(lines)


def _describe(check: Check) -> str:
    if check.name.startswith('matches'):
        return f'{check.name}: ' + ('differ' if check.value else 'the same')
    return (f'{check.name}: {check.value:.2e} '
            f'(threshold {check.threshold:.0e})')


def verdict(results: Sequence[VersionResult],
            thresholds: Thresholds = ACCEPTANCE) -> str:
    """One line: EQUAL, or DIFFERENT with the first failing figures."""
    failed = [
        c for r in results for c in checks(r, thresholds) if not c.passed
    ]
    if not failed:
        return 'EQUAL: every figure within its threshold'
    return (f'DIFFERENT: {len(failed)} figures beyond their thresholds, '
            'e.g. ' + '; '.join(f'{c.version} {_describe(c)}'
                                for c in failed[:4]))


def exit_code(results: Sequence[VersionResult],
              thresholds: Thresholds = ACCEPTANCE) -> int:
    """0 when every figure of every version is within its threshold,
    else 1."""
    return int(not all(
        c.passed for r in results for c in checks(r, thresholds)))


def pairs_of(query_inds: Tensor, gt_inds: Tensor) -> Pairs:
    """Sorted (query, gt) pairs from two index tensors."""
    return sorted(zip(query_inds.tolist(), gt_inds.tolist()))
