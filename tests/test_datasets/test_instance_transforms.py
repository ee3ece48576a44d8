import numpy as np
import pytest
from mmengine.dataset import Compose

import querypose_mm  # noqa: F401
from conftest import COCO_MINI
from mmpose.datasets import CocoDataset
from querypose_mm.datasets.transforms import (FilterInstances,
                                              RandomCropInstances,
                                              RandomShortSideResize)


@pytest.fixture(scope='module')
def dataset():
    return CocoDataset(
        data_root=COCO_MINI,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
        data_mode='bottomup',
        pipeline=[])


def _load(dataset, img_id):
    index = next(
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['img_id'] == img_id)
    results = dataset.get_data_info(index)
    return Compose([dict(type='LoadImage')])(results)


def _to_original(points, results):
    """add_pred_to_datasample's mapping from input pixels to the image."""
    size = np.array(results['input_size'], dtype=np.float64)
    return points / size * results['input_scale'] + results[
        'input_center'] - 0.5 * results['input_scale']


def _per_instance_lengths(results):
    keys = ('bbox', 'bbox_score', 'keypoints', 'keypoints_visible', 'area',
            'iscrowd', 'id', 'num_keypoints', 'category_id')
    return {k: len(results[k]) for k in keys if k in results}


def test_filter_drops_crowds_keeps_fields_aligned(dataset):
    results = _load(dataset, 129648)  # 14 annotations, crowd among them
    assert 1 in results['iscrowd']
    n_crowd = int(np.sum(results['iscrowd']))
    n = len(results['bbox'])
    results = FilterInstances()(results)
    assert set(_per_instance_lengths(results).values()) == {n - n_crowd}
    assert 1 not in results['iscrowd']


@pytest.mark.parametrize('short,max_size', [(800, 1333), (480, 1333),
                                            (800, 900)])
def test_short_side_resize_and_exact_way_back(dataset, short, max_size):
    results = _load(dataset, 433998)
    h, w = results['img'].shape[:2]
    original = results['keypoints'].copy()
    boxes = results['bbox'].copy()
    results = RandomShortSideResize(short, max_size)(results)
    new_h, new_w = results['img'].shape[:2]
    assert results['input_size'] == (new_w, new_h)
    assert results['img_shape'] == (new_h, new_w)
    if max(h, w) * short / min(h, w) <= max_size:
        assert min(new_h, new_w) == short
    else:
        assert max(new_h, new_w) == max_size
    scale = np.array([new_w / w, new_h / h])
    np.testing.assert_allclose(
        results['keypoints'], original * scale, rtol=1e-5)
    np.testing.assert_allclose(
        results['bbox'], boxes * np.tile(scale, 2), rtol=1e-5)
    np.testing.assert_allclose(
        _to_original(results['keypoints'], results), original, atol=1e-3)


def test_crop_then_resize_maps_back_and_masks_outside_keypoints(dataset):
    np.random.seed(3)
    results = _load(dataset, 538113)
    results = FilterInstances()(results)
    ids_before = list(results['id'])
    original = dict(zip(ids_before, results['keypoints'].copy()))
    pipeline = Compose([
        dict(type='RandomShortSideResize', scales=[500], max_size=None),
        dict(type='RandomCropInstances', crop_size=(384, 600)),
        dict(type='RandomShortSideResize', scales=[640], max_size=1333),
    ])
    results = pipeline(results)
    h, w = results['img'].shape[:2]
    assert min(h, w) == 640
    lengths = set(_per_instance_lengths(results).values())
    assert len(lengths) == 1 and lengths.pop() <= len(ids_before)
    boxes = results['bbox']
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w + 1e-3).all()
    assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h + 1e-3).all()
    assert ((boxes[:, 2:] - boxes[:, :2]) >= 1).all()
    for kpts, vis, ann_id in zip(results['keypoints'],
                                 results['keypoints_visible'], results['id']):
        np.testing.assert_allclose(
            _to_original(kpts, results), original[ann_id], atol=1e-2)
        inside = ((kpts >= 0) & (kpts <= [w, h])).all(-1)
        assert not (vis[~inside] > 0).any()


def test_crop_larger_than_image_keeps_everything(dataset):
    results = _load(dataset, 433998)
    results = RandomShortSideResize(200, None)(results)
    n = len(results['bbox'])
    kept = RandomCropInstances((384, 600))(results)
    assert kept['img'].shape[:2] == results['img'].shape[:2]
    assert len(kept['bbox']) == n


def test_horizontal_flip_before_resize_on_non_square_image(dataset):
    # mmpose's RandomFlip reads (h, w) from img_shape when no input_size is
    # set yet, so it is placed before the resize.
    results = _load(dataset, 433998)
    h, w = results['img'].shape[:2]
    assert h != w
    keypoints = results['keypoints'].copy()
    boxes = results['bbox'].copy()
    flip = Compose([dict(type='RandomFlip', prob=1.0, direction='horizontal')])
    flipped = flip(dict(results))
    flip_indices = results['flip_indices']
    np.testing.assert_allclose(flipped['keypoints'][:, flip_indices, 0],
                               w - 1 - keypoints[..., 0])
    np.testing.assert_allclose(flipped['bbox'][:, 0], w - 1 - boxes[:, 2])
    twice = flip(dict(flipped))
    np.testing.assert_allclose(twice['keypoints'], keypoints, rtol=1e-5)
    np.testing.assert_allclose(twice['bbox'], boxes, rtol=1e-5)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match='scales must be positive'):
        RandomShortSideResize([0, 800])
    with pytest.raises(ValueError, match='0 < min <= max'):
        RandomCropInstances((600, 384))
