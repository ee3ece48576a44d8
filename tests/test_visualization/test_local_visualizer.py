import numpy as np
from mmengine.structures import InstanceData

from mmpose.datasets import CocoDataset
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.structures import PoseDataSample
from mmpose.visualization import PoseLocalVisualizer
from querypose_mm.visualization import QueryPoseVisualizer


def _sample(scores):
    rng = np.random.RandomState(0)
    n = len(scores)
    xy1 = rng.uniform(20, 120, (n, 1, 2))
    sample = PoseDataSample()
    sample.pred_instances = InstanceData(
        keypoints=xy1 + rng.uniform(0, 60, (n, 17, 2)),
        keypoint_scores=np.ones((n, 17)),
        bboxes=np.concatenate([xy1[:, 0], xy1[:, 0] + 60], 1),
        bbox_scores=np.asarray(scores, np.float32))
    return sample


def _draw(visualizer, sample):
    visualizer.add_datasample(
        'x', np.zeros((200, 200, 3), np.uint8), sample, draw_gt=False)
    return visualizer.get_image()


def test_only_persons_reaching_the_pose_score_are_drawn():
    meta = parse_pose_metainfo(CocoDataset.METAINFO)
    ours = QueryPoseVisualizer(name='ours', pose_score_thr=0.1)
    plain = PoseLocalVisualizer(name='plain')
    for visualizer in (ours, plain):
        visualizer.set_dataset_meta(meta)
    sample = _sample([0.9, 0.05, 0.5])
    kept = sample.clone()
    kept.pred_instances = sample.pred_instances[[0, 2]]

    drawn = _draw(ours, sample)
    np.testing.assert_array_equal(drawn, _draw(plain, kept))
    assert not np.array_equal(drawn, _draw(plain, sample))
    assert len(sample.pred_instances) == 3  # the predictions keep everyone
