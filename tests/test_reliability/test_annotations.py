"""Odd annotations through mmpose's CocoDataset, our pipeline and a training
step: every loss term and every gradient stays finite, and what cannot be
learned from is dropped or masked, not trained on."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from conftest import COCO_MINI, REPO_ROOT
from mmpose.datasets import CocoDataset
from mmpose.evaluation import CocoMetric
from querypose_mm.datasets.transforms import (FilterInstances,
                                              RandomCropInstances)
from querypose_mm.testing import build_quickstart_model, finite_training_step

CPU_CONFIG = osp.join(REPO_ROOT, 'configs', 'querypose', 'coco',
                      'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')
SOURCE_ANN = osp.join(COCO_MINI, 'annotations',
                      'person_keypoints_train2017.json')
MANY = 790  # 640x422, four persons with keypoints
CROWD = 433998  # 640x427, holds one crowd region
EMPTY = 125870  # 640x383, given no annotation here

TRAIN_PIPELINE = [
    dict(type='LoadImageOrSkip'),
    dict(type='FilterInstances'),
    dict(type='RandomShortSideResize', scales=[256], max_size=427),
    dict(type='PackPoseInputs'),
]


def _edited_annotations():
    """Real annotations of real images, edited into the odd cases."""
    with open(SOURCE_ANN) as f:
        source = json.load(f)
    images = {im['id']: im for im in source['images']}
    many = [
        copy.deepcopy(a) for a in source['annotations']
        if a['image_id'] == MANY
    ]
    partly_out, wholly_out, kpts_out, no_kpts = many
    x, y, w, h = partly_out['bbox']
    partly_out['bbox'] = [-40.0, y, w + 80.0 + x + 40.0, h]  # both sides
    wholly_out['bbox'] = [700.0, 10.0, 50.0, 100.0]  # clipped to zero area
    kpts = np.array(kpts_out['keypoints'], np.float64).reshape(-1, 3)
    kpts[kpts[:, 2] > 0, 0] = 640 + 300  # far right of image and box
    kpts_out['keypoints'] = kpts.flatten().tolist()
    no_kpts['keypoints'] = [0] * 51
    no_kpts['num_keypoints'] = 0
    degenerate = dict(
        copy.deepcopy(no_kpts), id=999000001, bbox=[100.0, 100.0, 0.0, 40.0])
    crowd = [
        copy.deepcopy(a) for a in source['annotations']
        if a['image_id'] == CROWD and a['iscrowd']
    ]
    assert len(crowd) == 1
    return dict(
        images=[images[MANY], images[CROWD], images[EMPTY]],
        annotations=many + [degenerate] + crowd,
        categories=source['categories'],
        ids=dict(
            partly_out=partly_out['id'],
            wholly_out=wholly_out['id'],
            kpts_out=kpts_out['id'],
            no_kpts=no_kpts['id'],
            degenerate=degenerate['id']))


@pytest.fixture(scope='module')
def odd_coco(tmp_path_factory):
    data = _edited_annotations()
    ids = data.pop('ids')
    path = tmp_path_factory.mktemp('odd') / 'odd.json'
    path.write_text(json.dumps(data))
    return str(path), ids


def _dataset(ann_file, pipeline, test_mode=False):
    return CocoDataset(
        ann_file=ann_file,
        data_prefix=dict(img=osp.join(COCO_MINI, 'train2017/')),
        data_mode='bottomup',
        test_mode=test_mode,
        pipeline=pipeline)


def _sample(dataset, img_id):
    index = next(
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['img_id'] == img_id)
    return dataset[index]


@pytest.fixture(scope='module')
def model():
    return build_quickstart_model().train()


def test_what_cannot_be_learned_from_is_dropped(odd_coco):
    ann_file, ids = odd_coco
    dataset = _dataset(ann_file, TRAIN_PIPELINE)
    # mmpose keeps no image without annotations in training
    assert EMPTY not in {
        dataset.get_data_info(i)['img_id']
        for i in range(len(dataset))
    }
    many = _sample(dataset, MANY)['data_samples']
    boxes = many.gt_instances.bboxes
    # wholly outside (zero area once clipped) and zero-width are gone
    assert set(many.metainfo['id']) == {
        ids['partly_out'], ids['kpts_out'], ids['no_kpts']
    }
    assert len(boxes) == 3
    h, w = many.metainfo['img_shape']
    assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all()
    assert ((boxes[:, 2:] - boxes[:, :2]) >= 1).all()
    crowd_only = _sample(dataset, CROWD)['data_samples']
    assert len(crowd_only.gt_instances.bboxes) == 0


def test_training_steps_on_odd_batches_are_finite(odd_coco, model):
    ann_file, _ = odd_coco
    dataset = _dataset(ann_file, TRAIN_PIPELINE)
    many, crowd_only = _sample(dataset, MANY), _sample(dataset, CROWD)

    seen = []
    rle_forward = model.head.criterion.loss_keypoint.forward

    def spy(pred, sigma_logits, target, weight, avg_factor=None):
        seen.append((target.detach().clone(), weight.clone()))
        return rle_forward(pred, sigma_logits, target, weight, avg_factor)

    model.head.criterion.loss_keypoint.forward = spy
    try:
        losses = finite_training_step(model, [many, crowd_only])
    finally:
        del model.head.criterion.loss_keypoint.forward
    assert all(v.item() != 0 for k, v in losses.items() if 'kpt' not in k)
    # keypoints outside the (predicted) box are masked, as in the paper
    masked_visible = 0
    visible = many['data_samples'].gt_instances.keypoints_visible > 0
    for target, weight in seen:
        outside = (target.abs() > 0.5).any(-1)
        assert (weight[outside] == 0).all()
        masked_visible += int((outside & (weight == 0)).sum())
    assert visible.sum() > 0 and masked_visible > 0

    # a batch without a single person: every query is background
    losses = finite_training_step(model, [crowd_only, crowd_only])
    assert losses['s0.loss_cls'].item() > 0
    for name in ('loss_bbox', 'loss_iou', 'loss_kpt'):
        assert losses[f's0.{name}'].item() == 0


def test_zero_area_boxes_do_not_break_a_step(odd_coco, model):
    """With the size filter off (min_box_size=0) the zero-area boxes reach
    the matcher and the GIoU / L1 / RLE losses: still finite."""
    ann_file, _ = odd_coco
    pipeline = copy.deepcopy(TRAIN_PIPELINE)
    pipeline[1] = dict(type='FilterInstances', min_box_size=0)
    many = _sample(_dataset(ann_file, pipeline), MANY)
    boxes = many['data_samples'].gt_instances.bboxes
    assert ((boxes[:, 2:] - boxes[:, :2]) <= 0).any(-1).sum() == 2
    finite_training_step(model, [many, many])


def test_crop_that_cuts_a_person_to_zero_width_drops_it():
    results = dict(
        img=np.zeros((100, 200, 3), np.uint8),
        bbox=np.array([[0., 10., 10., 90.], [50., 10., 150., 90.]],
                      np.float32),
        keypoints=np.full((2, 17, 2), 60., np.float32),
        keypoints_visible=np.ones((2, 17), np.float32),
        id=[1, 2])
    crop = RandomCropInstances(crop_size=(50, 200))
    crop._draw_window = lambda h, w: (10, 0, 190, 100)  # starts at x=10
    out = crop(copy.deepcopy(results))
    assert out['id'] == [2]
    keep_degenerate = RandomCropInstances(crop_size=(50, 200), min_box_size=0)
    keep_degenerate._draw_window = crop._draw_window
    out = keep_degenerate(copy.deepcopy(results))
    assert out['id'] == [1, 2] and out['bbox'][0, 2] == 0


@pytest.mark.parametrize('field', ['bbox', 'keypoints'])
def test_non_finite_annotation_is_a_clear_error(field):
    results = dict(
        img_path='some/image.jpg',
        bbox=np.array([[0., 0., 10., 10.], [5., 5., 20., 20.]], np.float32),
        keypoints=np.zeros((2, 17, 2), np.float32),
        id=[11, 12])
    results[field][1].flat[2] = np.nan
    with pytest.raises(ValueError, match=r'some/image\.jpg.*\[12\].*' + field):
        FilterInstances()(results)


def test_evaluation_with_empty_and_crowd_only_images(odd_coco, model):
    """Images without a person are scored (no ground truth, predictions are
    false positives) and do not break CocoMetric."""
    ann_file, _ = odd_coco
    cfg = Config.fromfile(CPU_CONFIG)
    dataset = _dataset(
        ann_file, cfg.val_dataloader.dataset.pipeline, test_mode=True)
    assert {dataset.get_data_info(i)['img_id']
            for i in range(len(dataset))} == {MANY, CROWD, EMPTY}
    metric = CocoMetric(ann_file=None, score_mode='bbox', nms_mode='none')
    metric.dataset_meta = dataset.metainfo
    model.eval()
    try:
        with torch.no_grad():
            for i in range(len(dataset)):
                data = pseudo_collate([dataset[i]])
                outputs = model.test_step(data)
                assert len(outputs[0].pred_instances) == 12
                metric.process(data, [o.to_dict() for o in outputs])
        results = metric.evaluate(len(dataset))
    finally:
        model.train()
    assert 0.0 <= results['coco/AP'] <= 1.0
