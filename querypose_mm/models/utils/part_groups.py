"""Part division schemes: which keypoints each part query regresses.

A scheme is a list of keypoint-index lists that covers every keypoint of the
dataset exactly once; it is a config field (``model.head.part_groups``), so
every scheme of the paper's Fig. 4 / Table 2d is a config.
"""
from typing import List, Sequence

# COCO-17 order: 0 nose, 1-2 eyes, 3-4 ears, 5-6 shoulders, 7-8 elbows,
# 9-10 wrists, 11-12 hips, 13-14 knees, 15-16 ankles (left before right).
# Scheme (a): one part per keypoint.
COCO_PARTS_17: List[List[int]] = [[k] for k in range(17)]
# Scheme (b): the face as one part, every other keypoint alone.
COCO_PARTS_13: List[List[int]] = [[0, 1, 2, 3, 4]] + [[k]
                                                      for k in range(5, 17)]
# Scheme (c), the paper's choice (Table 2d): 7 rigid parts, in the official
# code's order.
COCO_PARTS_7: List[List[int]] = [[0, 1, 2, 3, 4], [5, 6], [7, 9], [8, 10],
                                 [11, 12], [13, 15], [14, 16]]
# Scheme (d): face and four limbs.
COCO_PARTS_5: List[List[int]] = [[0, 1, 2, 3, 4], [5, 7, 9], [6, 8, 10],
                                 [11, 13, 15], [12, 14, 16]]
# CrowdPose-14 (0-1 shoulders, 2-3 elbows, 4-5 wrists, 6-7 hips, 8-9 knees,
# 10-11 ankles, 12 head top, 13 neck). Neither the paper nor the official
# code splits it; these are scheme (c)'s rigid parts.
CROWDPOSE_PARTS_7: List[List[int]] = [[12, 13], [0, 1], [2, 4], [3, 5], [6, 7],
                                      [8, 10], [9, 11]]


def check_part_groups(part_groups: Sequence[Sequence[int]],
                      num_keypoints: int) -> None:
    """Raise a clear error unless every keypoint is in exactly one part."""
    flat = [int(k) for group in part_groups for k in group]
    if any(len(group) == 0 for group in part_groups):
        raise ValueError(f'part_groups has an empty part: {part_groups}')
    missing = sorted(set(range(num_keypoints)) - set(flat))
    repeated = sorted({k for k in flat if flat.count(k) > 1})
    outside = sorted({k for k in flat if not 0 <= k < num_keypoints})
    if missing or repeated or outside:
        raise ValueError(
            f'part_groups must cover keypoints 0..{num_keypoints - 1} exactly '
            f'once (num_keypoints={num_keypoints}); missing {missing}, '
            f'repeated {repeated}, out of range {outside}. Got {part_groups}.')
