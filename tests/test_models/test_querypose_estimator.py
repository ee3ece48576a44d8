"""QueryPoseEstimator refuses checkpoints that do not fit it, and sizes
that would only fail in the forward, where they enter (load, build)."""
import collections

import pytest
import torch
import torchvision
from mmengine.runner import load_checkpoint
from test_querypose_head import real_batch

from conftest import COCO_MINI
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
                                           ('num_queries', 2.5)])
def test_head_sizes_are_checked_at_build(setting, value):
    with pytest.raises(
            ValueError,
            match=rf'model\.head\.{setting} must be a positive '
            rf'integer, got {value}'):
        MODELS.build(get_quickstart_model_cfg(dict(head={setting: value})))


def test_the_former_head_max_per_img_moves_to_test_cfg_with_a_warning():
    cfg = get_quickstart_model_cfg(dict(head=dict(max_per_img=5)))
    cfg['test_cfg'].pop('max_per_img')
    with pytest.warns(DeprecationWarning, match='now model.test_cfg'):
        model = MODELS.build(cfg)
    assert model.test_cfg['max_per_img'] == 5
    assert not hasattr(model.head, 'max_per_img')
    cfg['test_cfg']['max_per_img'] = 3  # test_cfg's wins
    with pytest.warns(DeprecationWarning, match='now model.test_cfg'):
        assert MODELS.build(cfg).test_cfg['max_per_img'] == 3
    cfg['head']['max_per_img'] = -1  # and is checked there
    with pytest.raises(ValueError, match=r'model\.test_cfg\.max_per_img'):
        MODELS.build(dict(cfg, test_cfg={}))


def test_every_change_of_test_cfg_is_checked_and_a_refused_one_changes_nothing(
):
    model = MODELS.build(get_quickstart_model_cfg())
    before = dict(model.test_cfg)
    for change in (lambda cfg: cfg.update(score_thr=2),
                   lambda cfg: cfg.__setitem__('precision', 'fp16'),
                   lambda cfg: cfg.setdefault('decode_topk', 20),
                   lambda cfg: model.update_test_cfg(max_per_img=0)):
        with pytest.raises(ValueError):
            change(model.test_cfg)
        assert model.test_cfg == before
    model.test_cfg = dict(max_per_img=2)  # mmpose's Inferencer assigns
    assert isinstance(model.test_cfg, type(model.test_cfg))
    with pytest.raises(ValueError, match='max_per_img'):
        model.test_cfg['max_per_img'] = 0
    model.test_cfg['output_heatmaps'] = False  # mmpose's own keys pass
    # a pickled or copied model keeps a checked test_cfg
    import copy
    import pickle
    for copied in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert copied.test_cfg == model.test_cfg
        with pytest.raises(ValueError, match='max_per_img'):
            copied.test_cfg['max_per_img'] = 0


@pytest.mark.parametrize('test_cfg,match', [
    (dict(max_per_img=0), r'model\.test_cfg\.max_per_img must be a positive'),
    (dict(decode_topk=20), r'decode_topk was replaced by test_cfg\.score_thr'),
    (dict(flip_test=True), 'does not implement flip test'),
    (dict(score_thr=1.5), r'model\.test_cfg\.score_thr must be a pose score'),
    (dict(score_thr='0.1'),
     r'model\.test_cfg\.score_thr must be a pose score'),
    (dict(precision='fp16'), r"model\.test_cfg\.precision must be one of "
     r"\('fp32', 'bf16'\), got 'fp16'"),
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


def _real_test_batch():
    """Two bundled val images through the quick start's test pipeline."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from mmpose.datasets import CocoDataset
    from querypose_mm.testing import QUICKSTART_CONFIG, get_config_path
    cfg = Config.fromfile(get_config_path(QUICKSTART_CONFIG))
    dataset = CocoDataset(
        data_root=COCO_MINI,
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'),
        data_mode='bottomup',
        test_mode=True,
        pipeline=cfg.val_pipeline)
    return pseudo_collate([dataset[0], dataset[1]])


def _dtypes_seen(model, modules_by_role):
    """Hooks recording the dtype of each role's first input and output."""
    seen = collections.defaultdict(set)
    for role, modules in modules_by_role.items():
        for module in modules:
            module.register_forward_hook(lambda _m, args, out, role=role: seen[
                role].add((args[0].dtype, (out[0] if isinstance(
                    out, (tuple, list)) else out).dtype)))
    return seen


def test_bf16_inference_keeps_in_float32_what_accuracy_needs():
    """test_cfg.precision='bf16': backbone, FPN, conv stacks and SPEGM in
    bfloat16 (the conv stacks' weights channels-last); the box decoders and
    the coordinate/sigma heads in float32; persons close to float32's."""
    model = build_quickstart_model(seed=0).eval()
    batch = _real_test_batch()
    with torch.no_grad():
        expected = model.test_step(batch)
    model.test_cfg['precision'] = 'bf16'
    head = model.head
    seen = _dtypes_seen(
        model,
        dict(
            backbone=[model.backbone],
            conv_stack=[kd.conv_stack for kd in head.keypoint_decoders],
            spegm=[kd.spegm for kd in head.keypoint_decoders],
            box_decoder=list(head.box_decoders),
            coord_head=[kd.coord_head for kd in head.keypoint_decoders],
            sigma_head=[kd.sigma_head for kd in head.keypoint_decoders]))
    with torch.no_grad():
        got = model.test_step(batch)
    bf16, fp32 = torch.bfloat16, torch.float32
    assert seen['backbone'] == {(fp32, bf16)}  # the image, cast by autocast
    assert seen['conv_stack'] == {(fp32, bf16)}  # RoIAlign is float32
    assert seen['spegm'] == {(bf16, bf16)}
    for role in ('box_decoder', 'coord_head', 'sigma_head'):
        assert seen[role] == {(fp32, fp32)}, role
    assert head.keypoint_decoders[0].conv_stack[0].weight.is_contiguous(
        memory_format=torch.channels_last)
    assert model.backbone.conv1.weight.is_contiguous()
    for sample_got, sample_expected in zip(got, expected):
        pred, ref = sample_got.pred_instances, sample_expected.pred_instances
        assert pred.keypoints.dtype == ref.keypoints.dtype
        # random weights: bf16 may reorder near-tied queries; the best
        # person's box is the same to bf16 rounding of the features
        size = (ref.bboxes[0, 2:] - ref.bboxes[0, :2]).max()
        assert abs(pred.bbox_scores[0] - ref.bbox_scores[0]) < 0.02
        assert abs(pred.bboxes[0] - ref.bboxes[0]).max() < 0.05 * size
    # and back: float32 again, on the channels-last weights the bf16 mode
    # left, whose kernels round otherwise (measured: at most 0.006 px)
    model.test_cfg['precision'] = 'fp32'
    with torch.no_grad():
        again = model.test_step(batch)
    for sample_again, sample_expected in zip(again, expected):
        torch.testing.assert_close(
            torch.from_numpy(sample_again.pred_instances.keypoints),
            torch.from_numpy(sample_expected.pred_instances.keypoints),
            atol=0.05,
            rtol=0)


def test_under_any_autocast_the_policys_modules_run_in_float32():
    """An AMP-style training step (plain torch.autocast, no
    test_cfg.precision): the box decoders and the coordinate/sigma heads
    still compute in float32, also in a deep copy (mmengine's EMA)."""
    import copy
    model = copy.deepcopy(build_quickstart_model(seed=0))
    head = model.head
    assert head.box_decoders[0].forward.module is head.box_decoders[0]
    seen = _dtypes_seen(
        model,
        dict(
            box_decoder=list(head.box_decoders),
            coord_head=[kd.coord_head for kd in head.keypoint_decoders],
            spegm=[kd.spegm for kd in head.keypoint_decoders]))
    batch = model.data_preprocessor(real_batch(), training=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(batch['inputs'], batch['data_samples'])
    assert {out for _, out in seen['box_decoder']} == {torch.float32}
    assert {out for _, out in seen['coord_head']} == {torch.float32}
    assert {out for _, out in seen['spegm']} == {torch.bfloat16}
    assert all(torch.isfinite(loss) for loss in losses.values())


def test_run_in_float32_is_float32_only_under_autocast():
    from querypose_mm.models.utils import run_in_float32
    torch.manual_seed(0)
    linear = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert linear(x).dtype == torch.bfloat16
        out = run_in_float32(linear, x.bfloat16())
    assert out.dtype == torch.float32
    assert torch.equal(out, linear(x.bfloat16().float()))
    assert run_in_float32(linear, x.double().float()).dtype == torch.float32
