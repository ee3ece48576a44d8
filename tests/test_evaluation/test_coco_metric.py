"""mmpose's CocoMetric on QueryPose's output format gives the right figures."""
import json
import os.path as osp
from collections import defaultdict

import numpy as np
import pytest
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from conftest import COCO_MINI, TEST_DATA
from mmpose.datasets import CocoDataset, CrowdPoseDataset
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.models import BottomupPoseEstimator
from mmpose.registry import DATASETS

FIXTURES = osp.join(TEST_DATA, 'xtcocoapi_eval_examples')
VAL_PIPELINE = [
    dict(type='LoadImage'),
    dict(type='RandomShortSideResize', scales=800, max_size=1333),
    dict(
        type='PackPoseInputs',
        meta_keys=('id', 'img_id', 'img_path', 'ori_shape', 'img_shape',
                   'input_size', 'input_center', 'input_scale')),
]


def test_ground_truth_through_the_model_output_format_gives_ap_1():
    """GT as predictions, in input pixels, mapped back by the estimator."""
    dataset = DATASETS.build(
        dict(
            type='CocoDataset',
            data_root=COCO_MINI,
            data_mode='bottomup',
            ann_file='annotations/person_keypoints_val2017.json',
            data_prefix=dict(img='val2017/'),
            test_mode=True,
            pipeline=VAL_PIPELINE))
    evaluator = Evaluator(
        dict(
            type='CocoMetric',
            ann_file=osp.join(COCO_MINI,
                              'annotations/person_keypoints_val2017.json'),
            score_mode='bbox',
            nms_mode='none'))
    evaluator.dataset_meta = dataset.metainfo
    num_people = 0
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        gt = sample.gt_instances
        # every person with a pose to predict (COCOeval ignores the others),
        # in input pixels, as QueryPoseHead.predict returns them
        posed = np.asarray(gt.keypoints_visible).sum(-1) > 0
        preds = [
            InstanceData(
                keypoints=np.asarray(gt.keypoints, np.float32)[posed],
                keypoint_scores=np.ones((posed.sum(), 17), np.float32),
                bboxes=np.asarray(gt.bboxes, np.float32)[posed],
                bbox_scores=np.ones(posed.sum(), np.float32))
        ]
        # resized: the way back to the original image is not the identity
        assert not np.allclose(sample.metainfo['input_size'],
                               sample.metainfo['ori_shape'][::-1])
        out = BottomupPoseEstimator.add_pred_to_datasample(
            None, preds, None, [sample])
        num_people += posed.sum()
        evaluator.process(out)
    assert num_people >= 30
    metrics = evaluator.evaluate(len(dataset))
    assert metrics['coco/AP'] == pytest.approx(1.0)
    assert metrics['coco/AR'] == pytest.approx(1.0)


def _fixture_predictions(expected):
    """The fixtures' COCO result files as bottom-up data samples."""
    with open(osp.join(FIXTURES, expected['dt'])) as f:
        results = json.load(f)
    per_image = defaultdict(list)
    for result in results:
        per_image[result['image_id']].append(result)
    samples = []
    for img_id, people in per_image.items():
        kpts = np.array([p['keypoints'] for p in people],
                        np.float32).reshape(len(people), -1, 3)
        samples.append(
            dict(
                id=list(range(len(people))),
                img_id=img_id,
                gt_instances=dict(),
                pred_instances=dict(
                    keypoints=kpts[..., :2],
                    keypoint_scores=kpts[..., 2],
                    bbox_scores=np.array([p['score'] for p in people]))))
    return samples


@pytest.mark.parametrize('dataset,dataset_cls,metric_args', [
    ('coco', CocoDataset, dict()),
    ('crowdpose', CrowdPoseDataset,
     dict(iou_type='keypoints_crowd', use_area=False, prefix='crowdpose')),
])
def test_xtcocoapi_fixtures_through_coco_metric(dataset, dataset_cls,
                                                metric_args):
    with open(osp.join(FIXTURES, 'expected_metrics.json')) as f:
        expected = json.load(f)[dataset]
    meta = parse_pose_metainfo(dataset_cls.METAINFO)
    np.testing.assert_allclose(meta['sigmas'],
                               np.array(expected['sigmas_x10']) / 10)
    evaluator = Evaluator(
        dict(
            type='CocoMetric',
            ann_file=osp.join(FIXTURES, expected['gt']),
            score_mode='bbox',
            nms_mode='none',
            **metric_args))
    evaluator.dataset_meta = meta
    samples = _fixture_predictions(expected)
    evaluator.process(samples)
    metrics = evaluator.evaluate(len(samples))
    names = {
        'AP50': 'AP .5',
        'AP75': 'AP .75',
        'AP_M': 'AP (M)',
        'AP_L': 'AP (L)',
        'AR50': 'AR .5',
        'AR75': 'AR .75',
        'AR_M': 'AR (M)',
        'AR_L': 'AR (L)',
        'AP_easy': 'AP(E)',
        'AP_medium': 'AP(M)',
        'AP_hard': 'AP(H)'
    }
    prefix = metric_args.get('prefix', 'coco')
    for name, value in zip(expected['stats_names'], expected['stats']):
        got = metrics[f'{prefix}/{names.get(name, name)}']
        # the fixture holds 4 decimals
        assert got == pytest.approx(value, abs=5e-5 + 1e-9), name
