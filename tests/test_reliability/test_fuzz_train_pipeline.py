"""Fuzz: random valid-but-odd COCO annotations on a real photo, through
mmpose's CocoDataset, the paper's training pipeline (flip, multi-scale,
random crop; sizes scaled down 4x for speed) and one training step."""
import json
import os.path as osp
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmengine.config import Config

from conftest import COCO_MINI, REPO_ROOT
from mmpose.datasets import CocoDataset
from querypose_mm.testing import build_quickstart_model, finite_training_step

BASE_DATASET = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                        'coco_bottomup_querypose.py')
IMAGE = dict(id=790, file_name='000000000790.jpg', width=640, height=422)
PER_PERSON = ('bboxes', 'keypoints', 'keypoints_visible')


def _shrunk(transform):
    """The base pipeline with every pixel size divided by 4."""
    transform = dict(transform)
    if transform['type'] == 'RandomChoice':
        transform['transforms'] = [[_shrunk(t) for t in option]
                                   for option in transform['transforms']]
    if 'scales' in transform:
        transform['scales'] = [s // 4 for s in transform['scales']]
    if transform.get('max_size'):
        transform['max_size'] //= 4
    if 'crop_size' in transform:
        transform['crop_size'] = tuple(s // 4 for s in transform['crop_size'])
    return transform


TRAIN_PIPELINE = [
    _shrunk(t) for t in Config.fromfile(BASE_DATASET).train_pipeline
]
_model = None


def _get_model():
    global _model
    if _model is None:
        _model = build_quickstart_model().train()
    return _model


coordinate = st.floats(-200, 900, allow_nan=False, width=32)
person = st.fixed_dictionaries(
    dict(
        bbox=st.tuples(coordinate, coordinate, st.floats(0, 500, width=32),
                       st.floats(0, 500, width=32)),
        keypoints=st.lists(
            st.tuples(coordinate, coordinate, st.sampled_from([0, 1, 2])),
            min_size=17,
            max_size=17),
        all_unlabelled=st.booleans(),
        iscrowd=st.sampled_from([0, 0, 0, 1])))


def _annotation_file(folder, persons):
    annotations = []
    for i, p in enumerate(persons):
        kpts = [0.0] * 51 if p['all_unlabelled'] else [
            float(v) for k in p['keypoints'] for v in k
        ]
        annotations.append(
            dict(
                id=i + 1,
                image_id=IMAGE['id'],
                category_id=1,
                bbox=[float(v) for v in p['bbox']],
                area=float(p['bbox'][2] * p['bbox'][3]),
                iscrowd=p['iscrowd'],
                keypoints=kpts,
                num_keypoints=sum(v > 0 for v in kpts[2::3])))
    path = osp.join(folder, 'fuzz.json')
    with open(path, 'w') as f:
        json.dump(
            dict(
                images=[IMAGE],
                annotations=annotations,
                categories=[dict(id=1, name='person')]), f)
    return path


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
@given(
    persons=st.lists(person, min_size=1, max_size=5),
    seed=st.integers(0, 2**16))
def test_odd_annotations_through_pipeline_and_one_step(persons, seed):
    np.random.seed(seed)  # the pipeline's flip / scale / crop draws
    with tempfile.TemporaryDirectory() as folder:
        dataset = CocoDataset(
            ann_file=_annotation_file(folder, persons),
            data_prefix=dict(img=osp.join(COCO_MINI, 'train2017/')),
            data_mode='bottomup',
            pipeline=TRAIN_PIPELINE)
        samples = [dataset[0], dataset[0]]
    for sample in samples:
        data_sample = sample['data_samples']
        gt = data_sample.gt_instances
        lengths = {len(gt.get(k)) for k in PER_PERSON if k in gt}
        assert len(lengths) <= 1, lengths
        if 'bboxes' in gt and len(gt.bboxes):
            h, w = data_sample.metainfo['img_shape']
            boxes = np.asarray(gt.bboxes)
            assert np.isfinite(boxes).all()
            assert (boxes[:, 2:] > boxes[:, :2]).all()
            assert (boxes[:, 0::2] >= -1e-3).all()
            assert (boxes[:, 1::2] >= -1e-3).all()
            assert (boxes[:, 0::2] <= w + 1e-3).all()
            assert (boxes[:, 1::2] <= h + 1e-3).all()
    finite_training_step(_get_model(), samples)
