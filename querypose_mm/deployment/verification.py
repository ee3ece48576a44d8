"""The check of an exported file: ONNX Runtime against the PyTorch module
on seeded random inputs."""
from typing import Dict, Sequence, Tuple

import torch
from torch import Tensor, nn

from .runtimes import INPUT_NAMES, OUTPUT_NAMES

# ONNX Runtime vs PyTorch on a seeded random input: float rounding stays
# below 1e-3 of the box size (largest measured: 4.7e-4, HRNet-W48 with random
# weights, 6 stages). Random-weight Swin-L is chaotic (a 1e-5 change of the
# input moves its PyTorch outputs by 0.44 of the box size) and is refused.
# Also the largest pose-score difference.
VERIFY_TOLERANCE = 1e-2


def person_differences(got: Sequence[Tensor], ranked: Sequence[Tensor],
                       tolerance: float) -> Dict[str, float]:
    """The largest differences between the graph's persons ``got``
    (B, k, ...) and PyTorch's persons of every query, ``ranked``
    (B, N, ...), both in :data:`OUTPUT_NAMES` order.

    Near-tied queries may swap ranks between two runtimes, so each person is
    compared with the PyTorch person that fits it best among those whose
    pose score is within ``tolerance`` of its own.

    Returns:
        dict[str, float]: Per output, the largest difference: of the
        keypoints and boxes relative to the box size, of the pose score to
        the nearest PyTorch pose score.
    """
    size = (ranked[2][..., 2:] - ranked[2][..., :2]).amax(-1).clamp_min(1.0)
    pairs = [(g[:, :, None] - r[:, None]).abs() for g, r in zip(got, ranked)]
    # (B, k, N): every person of the graph against every PyTorch one
    diffs = dict(
        keypoints=pairs[0].amax((-2, -1)) / size[:, None],
        keypoint_scores=pairs[1].amax(-1),
        bboxes=pairs[2].amax(-1) / size[:, None])
    cost = torch.maximum(diffs['keypoints'],
                         diffs['bboxes']).masked_fill(pairs[3] > tolerance,
                                                      float('inf'))
    best = cost.argmin(-1, keepdim=True)
    errors = {
        name: diff.gather(-1, best).max().item()
        for name, diff in diffs.items()
    }
    errors['bbox_scores'] = pairs[3].amin(-1).max().item()
    return errors


def verify_export(onnx_model: nn.Module,
                  onnx_file: str,
                  shapes: Sequence[Tuple[int, int]],
                  tolerance: float = VERIFY_TOLERANCE) -> Dict[str, float]:
    """Run the exported file in ONNX Runtime and the PyTorch module (a
    :class:`~querypose_mm.deployment.QueryPoseOnnxModel`) on the
    same seeded inputs of each (H, W) in ``shapes``: a batch of two images
    of different sizes at the first, one image at the others.

    A trace freezes what a model computes from sizes in Python: such a
    graph is right only at the traced shape and batch size, which comparing
    at a second batch size and shape catches.

    Returns:
        dict[str, float]: The largest differences of
        :func:`person_differences`.

    Raises:
        ValueError: If a difference exceeds ``tolerance``.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(
        onnx_file, providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(0)
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    for index, (height, width) in enumerate(shapes):
        batch_size = 2 if index == 0 else 1
        inputs = torch.randn(batch_size, 3, height, width, generator=generator)
        # the unpadded images are a little smaller than the input, as usual
        img_whwh = torch.tensor([[width - 5 - 7 * i, height - 3 - 5 * i] * 2
                                 for i in range(batch_size)],
                                dtype=torch.float32)
        with torch.no_grad():
            ranked = onnx_model(inputs, img_whwh, onnx_model.head.num_queries)
        got = session.run(
            list(OUTPUT_NAMES),
            dict(zip(INPUT_NAMES, (inputs.numpy(), img_whwh.numpy()))))
        errors = person_differences([torch.from_numpy(o) for o in got], ranked,
                                    tolerance)
        worst = {key: max(worst[key], errors[key]) for key in worst}
        if max(errors.values()) > tolerance:
            found = ', '.join(f'{k} {v:.3g}' for k, v in errors.items())
            raise ValueError(
                'ONNX Runtime and PyTorch disagree on the exported model at '
                f'input {batch_size}x3x{height}x{width} ({found}; allowed '
                f'{tolerance}): '
                'either the graph depends on the traced shape (a size '
                'computed in Python; export with a fixed --input-shape, '
                'without --dynamic) or the model is unstable on this random '
                'input (e.g. random weights); --skip-verify writes it anyway')
    return worst
