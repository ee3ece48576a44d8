"""xtcocotools reproduces the published figures of its own example files."""
import json
import os.path as osp

import numpy as np
import pytest
from xtcocotools.coco import COCO
from xtcocotools.cocoeval import COCOeval

from conftest import TEST_DATA

FIXTURES = osp.join(TEST_DATA, 'xtcocoapi_eval_examples')


@pytest.mark.parametrize('dataset', ['coco', 'crowdpose'])
def test_keypoint_evaluation_matches_expected_metrics(dataset):
    with open(osp.join(FIXTURES, 'expected_metrics.json')) as f:
        expected = json.load(f)[dataset]
    gt = COCO(osp.join(FIXTURES, expected['gt']))
    dt = gt.loadRes(osp.join(FIXTURES, expected['dt']))
    sigmas = np.array(expected['sigmas_x10']) / 10.0
    evaluator = COCOeval(
        gt,
        dt,
        expected['iouType'],
        sigmas=sigmas,
        use_area=expected['use_area'])
    evaluator.params.useSegm = None
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats = np.round(np.asarray(evaluator.stats), 4)
    assert len(stats) == len(expected['stats_names'])
    np.testing.assert_allclose(stats, expected['stats'], atol=1e-4)
