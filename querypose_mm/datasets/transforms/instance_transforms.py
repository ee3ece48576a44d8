"""Sparse R-CNN style augmentation for bottom-up (all persons) samples.

mmpose's own bottom-up resize records ``input_size`` as (h, w) where
:meth:`BottomupPoseEstimator.add_pred_to_datasample` reads (w, h), and its
random crop tests numpy arrays for truth (which raises for more than one
person) and leaves ``area`` unfiltered. These transforms keep every
per-person field consistent and keep the mapping from the network input back
to the original image exact, through ``input_size``, ``input_center`` and
``input_scale``.
"""
from typing import Dict, List, Optional, Sequence, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmpose.registry import TRANSFORMS
from ...deployment.runtimes import short_side_resize_shape

# Per-person fields of mmpose's bottom-up data info; lists and arrays alike.
INSTANCE_KEYS = ('bbox', 'bbox_score', 'num_keypoints', 'keypoints',
                 'keypoints_visible', 'area', 'iscrowd', 'segmentation', 'id',
                 'category_id', 'raw_ann_info', 'keypoints_visible_weights')


def select_instances(results: Dict, keep: np.ndarray) -> Dict:
    """Keep the persons where ``keep`` is True in every per-person field."""
    keep = np.asarray(keep, dtype=bool)
    for key in INSTANCE_KEYS:
        value = results.get(key)
        if value is None:
            continue
        if isinstance(value, np.ndarray) and value.ndim > 0:
            results[key] = value[keep]
        elif isinstance(value, (list, tuple)) and len(value) == len(keep):
            results[key] = [v for v, k in zip(value, keep) if k]
    return results


def _update_input_frame(results: Dict, scale: np.ndarray,
                        offset: np.ndarray) -> None:
    """Compose ``input = current * scale + offset`` into the input frame.

    Keeps ``input_size`` (w, h), ``input_center`` and ``input_scale`` such
    that ``add_pred_to_datasample`` maps input pixels back to the original
    image: ``orig = input / input_size * input_scale + input_center -
    input_scale / 2``.
    """
    frame_scale = results.get('frame_scale', np.ones(2, np.float64)) * scale
    frame_offset = results.get('frame_offset', np.zeros(2, np.float64)) * scale
    frame_offset = frame_offset + offset
    h, w = results['img'].shape[:2]
    input_size = np.array([w, h], dtype=np.float64)
    results['frame_scale'] = frame_scale
    results['frame_offset'] = frame_offset
    results['img_shape'] = (h, w)
    results['input_size'] = (w, h)
    results['input_scale'] = (input_size / frame_scale).astype(np.float32)
    results['input_center'] = ((0.5 * input_size - frame_offset) /
                               frame_scale).astype(np.float32)


@TRANSFORMS.register_module()
class FilterInstances(BaseTransform):
    """Drop what is not a person to learn from; refuse what is not a number.

    - ``iscrowd`` regions: COCO marks crowds with ``iscrowd=1`` and no
      keypoints; a set-prediction model would otherwise be trained to box
      them as people.
    - Boxes thinner than ``min_box_size``: mmpose clips COCO boxes to the
      image, so a box wholly outside the image arrives as a zero-area box on
      the border, which no prediction should be trained to match.

    Persons with no labelled keypoint are kept: they supervise the boxes and
    carry zero keypoint weight. An image may end with no person at all; the
    head then trains every query as background.

    Args:
        drop_crowd (bool): Drop ``iscrowd`` regions. Defaults to True.
        min_box_size (float): Smallest width and height of a kept box, in
            pixels. Defaults to 1.

    Raises:
        ValueError: If a box or a keypoint holds NaN or inf; the message
            names the image and the annotation id.
    """

    def __init__(self,
                 drop_crowd: bool = True,
                 min_box_size: float = 1.0) -> None:
        self.drop_crowd = drop_crowd
        self.min_box_size = min_box_size

    def transform(self, results: Dict) -> Dict:
        bbox = results.get('bbox')
        if bbox is None or len(bbox) == 0:
            return results
        bbox = np.asarray(bbox, dtype=np.float64).reshape(-1, 4)
        self._check_finite(results, 'bbox', bbox.reshape(len(bbox), -1))
        if results.get('keypoints') is not None:
            keypoints = np.asarray(results['keypoints'], dtype=np.float64)
            self._check_finite(results, 'keypoints',
                               keypoints.reshape(len(keypoints), -1))
        wh = bbox[:, 2:] - bbox[:, :2]
        keep = (wh >= self.min_box_size).all(-1)
        iscrowd = results.get('iscrowd')
        if self.drop_crowd and iscrowd is not None and len(iscrowd):
            keep &= np.asarray(iscrowd) == 0
        return select_instances(results, keep)

    @staticmethod
    def _check_finite(results: Dict, key: str, values: np.ndarray) -> None:
        bad = ~np.isfinite(values).all(-1)
        if bad.any():
            ids = results.get('id')
            which = (f'annotation id {np.asarray(ids)[bad].tolist()}'
                     if ids is not None and len(ids) == len(bad) else
                     f'person index {np.flatnonzero(bad).tolist()}')
            raise ValueError(
                f'{results.get("img_path", "an image")}: {which} has a '
                f'non-finite "{key}" (NaN or inf); fix or remove that '
                'annotation in the annotation file')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(drop_crowd={self.drop_crowd}, '
                f'min_box_size={self.min_box_size})')


@TRANSFORMS.register_module()
class RandomShortSideResize(BaseTransform):
    """Resize keeping the aspect ratio, short side drawn from ``scales``.

    The short side becomes the drawn value unless the long side would then
    exceed ``max_size``, in which case the long side becomes ``max_size``
    (Detectron2's ``ResizeShortestEdge``, which QueryPose trains and tests
    with). Keypoints and boxes are scaled by the exact per-axis ratio of the
    rounded output size.

    Args:
        scales (int | Sequence[int]): Candidate short sides, drawn uniformly.
        max_size (int, optional): Upper bound of the long side.
            Defaults to 1333.
        interpolation (str): mmcv interpolation. Defaults to ``'bilinear'``.
    """

    def __init__(self,
                 scales: Union[int, Sequence[int]],
                 max_size: Optional[int] = 1333,
                 interpolation: str = 'bilinear') -> None:
        self.scales: List[int] = [scales] if isinstance(scales,
                                                        int) else list(scales)
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(
                f'RandomShortSideResize.scales must be positive, got {scales}')
        self.max_size = max_size
        self.interpolation = interpolation

    @cache_randomness
    def _draw_scale(self) -> int:
        return self.scales[np.random.randint(len(self.scales))]

    def target_size(self, h: int, w: int, short: int) -> tuple:
        """Output (h, w) for an (h, w) image and a short side, by the rule
        the exported model's runtimes apply too, defined once for both
        (:func:`~querypose_mm.deployment.short_side_resize_shape`)."""
        return short_side_resize_shape(h, w, short, self.max_size)

    def transform(self, results: Dict) -> Dict:
        h, w = results['img'].shape[:2]
        new_h, new_w = self.target_size(h, w, self._draw_scale())
        results['img'] = mmcv.imresize(
            results['img'], (new_w, new_h), interpolation=self.interpolation)
        scale = np.array([new_w / w, new_h / h], dtype=np.float64)
        if results.get('keypoints') is not None:
            results['keypoints'] = (results['keypoints'] * scale).astype(
                np.float32)
        if results.get('bbox') is not None:
            results['bbox'] = (results['bbox'] * np.tile(scale, 2)).astype(
                np.float32)
        if results.get('area') is not None:
            results['area'] = (np.asarray(results['area']) * scale.prod())
        results['scale_factor'] = tuple(scale)
        _update_input_frame(results, scale, np.zeros(2))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scales={self.scales}, '
                f'max_size={self.max_size})')


@TRANSFORMS.register_module()
class RandomCropInstances(BaseTransform):
    """DETR / Sparse R-CNN random crop of an absolute size range.

    Crop height and width are drawn from ``[min_size, min(max_size, side)]``
    and the offset uniformly. Boxes are clipped to the crop; persons whose
    clipped box is thinner than ``min_box_size`` are dropped; keypoints that
    fall outside the crop become invisible (weight 0), keeping their
    coordinates.

    Args:
        crop_size (tuple[int, int]): (min_size, max_size) in pixels.
        min_box_size (float): Smallest side of a kept box. Defaults to 1.
    """

    def __init__(self,
                 crop_size: Sequence[int] = (384, 600),
                 min_box_size: float = 1.0) -> None:
        low, high = crop_size
        if not 0 < low <= high:
            raise ValueError(
                'RandomCropInstances.crop_size must be '
                f'(min, max) with 0 < min <= max, got {crop_size}')
        self.crop_size = (int(low), int(high))
        self.min_box_size = min_box_size

    @cache_randomness
    def _draw_window(self, h: int, w: int) -> tuple:
        low, high = self.crop_size
        crop_h = np.random.randint(min(h, low), min(h, high) + 1)
        crop_w = np.random.randint(min(w, low), min(w, high) + 1)
        y0 = np.random.randint(0, h - crop_h + 1)
        x0 = np.random.randint(0, w - crop_w + 1)
        return x0, y0, crop_w, crop_h

    def transform(self, results: Dict) -> Dict:
        h, w = results['img'].shape[:2]
        x0, y0, crop_w, crop_h = self._draw_window(h, w)
        results['img'] = results['img'][y0:y0 + crop_h, x0:x0 + crop_w]
        shift = np.array([x0, y0], dtype=np.float32)
        if results.get('bbox') is not None and len(results['bbox']):
            bbox = results['bbox'] - np.tile(shift, 2)
            bbox[:, 0::2] = bbox[:, 0::2].clip(0, crop_w)
            bbox[:, 1::2] = bbox[:, 1::2].clip(0, crop_h)
            results['bbox'] = bbox
            if results.get('keypoints') is not None:
                keypoints = results['keypoints'] - shift
                outside = ((keypoints < 0) |
                           (keypoints > [crop_w, crop_h])).any(-1)
                visible = np.array(results['keypoints_visible'], copy=True)
                visible[outside] = 0
                results['keypoints'] = keypoints
                results['keypoints_visible'] = visible
            wh = bbox[:, 2:] - bbox[:, :2]
            select_instances(results, (wh >= self.min_box_size).all(-1))
        _update_input_frame(results, np.ones(2), -shift.astype(np.float64))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(crop_size={self.crop_size})'
