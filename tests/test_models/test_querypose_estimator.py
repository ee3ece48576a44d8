"""QueryPoseEstimator refuses checkpoints that do not fit it, and sizes
that would only fail in the forward, where they enter (load, build)."""
import collections

import pytest
import torch
import torchvision
from mmengine.runner import load_checkpoint

from mmpose.registry import MODELS
from querypose_mm.models.pose_estimators.querypose_estimator import \
    CheckpointMismatchError
from querypose_mm.testing import (build_quickstart_model,
                                  get_quickstart_model_cfg)


def _save(tmp_path, name, state_dict):
    path = str(tmp_path / name)
    torch.save(dict(state_dict=state_dict), path)
    return path


def test_its_own_checkpoint_loads_with_every_weight(tmp_path):
    trained = build_quickstart_model(seed=0)
    path = _save(tmp_path, 'own.pth', trained.state_dict())
    model = build_quickstart_model(seed=1)
    load_checkpoint(model, path)
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_the_training_only_flow_may_be_missing(tmp_path):
    full = build_quickstart_model().state_dict()
    state_dict = collections.OrderedDict(
        (k, v) for k, v in full.items() if not k.startswith('head.criterion.'))
    state_dict._metadata = full._metadata  # the module versions
    load_checkpoint(build_quickstart_model(),
                    _save(tmp_path, 'no_flow.pth', state_dict))


def test_a_checkpoint_of_another_model_is_refused_naming_file_and_keys(
        tmp_path):
    path = _save(tmp_path, 'resnet18.pth',
                 torchvision.models.resnet18().state_dict())
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(build_quickstart_model(), path)
    message = str(info.value)
    assert path in message
    assert 'it lacks 303 of the model\'s 400 weights' in message
    assert 'backbone.conv1.weight' in message and 'fc.weight' not in message
    assert 'conv1.weight' in message
    assert 'querypose_official_to_mmpose.py' in message


def test_another_keypoint_count_is_refused_with_both_numbers(tmp_path):
    other = MODELS.build(
        get_quickstart_model_cfg(
            dict(
                head=dict(
                    num_keypoints=14,
                    part_groups=[[0, 1], [2, 3], [4, 5], [6, 7], [8, 9],
                                 [10, 11], [12, 13]]))))
    path = _save(tmp_path, 'crowdpose.pth', other.state_dict())
    with pytest.raises(
            CheckpointMismatchError,
            match=r'the checkpoint has 14 keypoints, the head 17 '
            r'\(model.head.num_keypoints\)'):
        load_checkpoint(build_quickstart_model(), path)


def test_partial_checkpoint_only_warns(tmp_path):
    path = _save(tmp_path, 'resnet18.pth',
                 torchvision.models.resnet18().state_dict())
    model = MODELS.build(
        dict(get_quickstart_model_cfg(), partial_checkpoint=True))
    load_checkpoint(model, path)


@pytest.mark.parametrize('setting,value', [('num_queries', 0),
                                           ('num_stages', 0),
                                           ('max_per_img', -1),
                                           ('num_queries', 2.5)])
def test_head_sizes_are_checked_at_build(setting, value):
    with pytest.raises(
            ValueError,
            match=rf'model\.head\.{setting} must be a positive '
            rf'integer, got {value}'):
        MODELS.build(get_quickstart_model_cfg(dict(head={setting: value})))


@pytest.mark.parametrize('test_cfg,match', [
    (dict(max_per_img=0), r'model\.test_cfg\.max_per_img must be a positive'),
    (dict(decode_topk=20), r'decode_topk was replaced by test_cfg\.score_thr'),
    (dict(flip_test=True), 'does not implement flip test'),
    (dict(score_thr=1.5), r'model\.test_cfg\.score_thr must be a pose score'),
    (dict(score_thr='0.1'),
     r'model\.test_cfg\.score_thr must be a pose score'),
])
def test_test_cfg_is_checked_at_build(test_cfg, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(get_quickstart_model_cfg(dict(test_cfg=test_cfg)))


def test_a_state_dict_from_memory_is_not_named_after_an_earlier_file(tmp_path):
    model = build_quickstart_model()
    load_checkpoint(model, _save(tmp_path, 'own.pth', model.state_dict()))
    with pytest.raises(CheckpointMismatchError) as info:
        model.load_state_dict(
            torchvision.models.resnet18().state_dict(), strict=False)
    assert 'checkpoint (a state dict) does not fit' in str(info.value)
    assert 'own.pth' not in str(info.value)
