import itertools

import numpy as np
import pytest
import torch
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData

from conftest import COCO_MINI
from mmpose.datasets import CocoDataset
from mmpose.models import BottomupPoseEstimator
from mmpose.structures import PoseDataSample
from querypose_mm.models.utils import (image_whwh, keypoints_from_box_frame,
                                       keypoints_to_box_frame)
from querypose_mm.testing import (build_quickstart_model,
                                  get_quickstart_head_cfg)


def tiny_model(**head_overrides):
    """The quick-start model (12 queries, 2 stages), seeded."""
    return build_quickstart_model(**head_overrides)


def real_batch(indices=(0, 1)):
    dataset = CocoDataset(
        data_root=COCO_MINI,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
        data_mode='bottomup',
        pipeline=[
            dict(type='LoadImage'),
            dict(
                type='BottomupRandomChoiceResize',
                scales=[(192, 320)],
                keep_ratio=True),
            dict(type='PackPoseInputs')
        ])
    return pseudo_collate([dataset[i] for i in indices])


def test_box_frame_centre_and_corners():
    boxes = torch.tensor([[10., 20., 110., 220.]])
    keypoints = torch.tensor([[[60., 120.], [10., 20.], [110., 220.],
                               [110., 20.]]])
    rel = keypoints_to_box_frame(keypoints, boxes)
    expected = torch.tensor([[[0., 0.], [-0.5, -0.5], [0.5, 0.5], [0.5,
                                                                   -0.5]]])
    torch.testing.assert_close(rel, expected)
    torch.testing.assert_close(keypoints_from_box_frame(rel, boxes), keypoints)


def _assigner():
    cfg = get_quickstart_head_cfg()['criterion']['assigner']
    return MMDET_TASK_UTILS.build(dict(cfg, _scope_='mmdet'))


def test_matching_of_shifted_ground_truth_is_identity():
    gt_boxes = torch.tensor([[10., 10., 60., 120.], [200., 40., 260., 200.],
                             [100., 100., 150., 180.]])
    gt = InstanceData(bboxes=gt_boxes, labels=torch.zeros(3).long())
    pred = InstanceData(
        bboxes=torch.cat(
            [gt_boxes + 3.0,
             torch.tensor([[0., 0., 300., 300.]])]),
        scores=torch.full((4, 1), 2.0))
    result = _assigner().assign(pred, gt, img_meta=dict(img_shape=(300, 300)))
    assert result.gt_inds.tolist() == [1, 2, 3, 0]


def test_matching_equals_brute_force_optimum_on_random_costs():
    rng = np.random.RandomState(0)
    assigner = _assigner()
    for _ in range(5):
        num_pred, num_gt = 5, 3
        xy = torch.from_numpy(rng.rand(num_pred + num_gt, 2) * 200).float()
        wh = torch.from_numpy(rng.rand(num_pred + num_gt, 2) * 80 + 5).float()
        boxes = torch.cat([xy, xy + wh], 1)
        pred = InstanceData(
            bboxes=boxes[:num_pred],
            scores=torch.from_numpy(rng.randn(num_pred, 1)).float())
        gt = InstanceData(
            bboxes=boxes[num_pred:], labels=torch.zeros(num_gt).long())
        meta = dict(img_shape=(300, 300))
        cost = sum(c(pred, gt, meta) for c in assigner.match_costs)
        result = assigner.assign(pred, gt, img_meta=meta)
        pos = (result.gt_inds > 0).nonzero().squeeze(1)
        got = cost[pos, result.gt_inds[pos] - 1].sum().item()
        best = min(
            sum(cost[p, g].item() for g, p in enumerate(perm))
            for perm in itertools.permutations(range(num_pred), num_gt))
        assert len(pos) == num_gt
        assert abs(got - best) < 1e-4


def test_predict_ranks_by_pose_score_in_the_input_frame():
    model = tiny_model().eval()
    model.update_test_cfg(max_per_img=4)
    batch = model.data_preprocessor(real_batch(), training=False)
    feats = model.extract_feat(batch['inputs'])
    samples = batch['data_samples']
    with torch.no_grad():
        preds = model.head.predict(feats, samples, model.test_cfg)
        last = model.head.run_stages(feats, image_whwh(samples, 'cpu'))[-1]
    n, k = model.head.num_queries, 17
    for i, pred in enumerate(preds):
        assert len(pred) == 4
        assert pred.keypoints.shape == (4, k, 2)
        assert pred.keypoint_scores.shape == (4, k)
        assert pred.bboxes.shape == (4, 4)
        assert np.all(np.diff(pred.bbox_scores) <= 0)
        # pose score = sigmoid(cls) * mean_k(1 - sigma), mean over x, y
        cls = last.cls_scores[i, :, 0].sigmoid()
        sigma = last.sigma_logits.sigmoid().view(-1, n, k, 2)[i]
        score = cls * (1 - sigma).mean(-1).mean(-1)
        top = score.topk(4)
        np.testing.assert_allclose(pred.bbox_scores, top.values, rtol=1e-5)
        np.testing.assert_allclose(
            pred.keypoint_scores.mean(-1) * cls.numpy()[top.indices.numpy()],
            top.values,
            rtol=1e-5)
        # the frame: boxes are the last stage's, in input pixels of this
        # (unpadded) image, and each keypoint is (mu + 0.5) * wh + xy1 of
        # its own box
        np.testing.assert_allclose(pred.bboxes,
                                   last.boxes[i, top.indices].numpy())
        mu = last.coords.view(-1, n, k, 2)[i, top.indices].numpy()
        boxes = pred.bboxes[:, None]
        np.testing.assert_allclose(
            pred.keypoints,
            (mu + 0.5) * (boxes[..., 2:] - boxes[..., :2]) + boxes[..., :2],
            rtol=1e-5,
            atol=1e-3)
        # ... and the boxes start as the whole unpadded input image
        h, w = samples[i].metainfo['img_shape']
        proposals = model.head.proposals(image_whwh(samples, 'cpu'))[0][i]
        torch.testing.assert_close(proposals,
                                   torch.tensor([[0., 0., w, h]]).expand(n, 4))


def test_add_pred_to_datasample_maps_back_to_the_original_image():
    # A 800x600 photo resized to 400x300: input pixel (100, 50) is (200, 100).
    sample = PoseDataSample(
        metainfo=dict(
            input_size=(400, 300),
            input_center=np.array([400., 300.]),
            input_scale=np.array([800., 600.])))
    pred = InstanceData(
        keypoints=np.array([[[100., 50.]]]),
        keypoint_scores=np.ones((1, 1)),
        bboxes=np.array([[10., 20., 110., 220.]]),
        bbox_scores=np.ones(1))
    out = BottomupPoseEstimator.add_pred_to_datasample(
        None, [pred], None, [sample])[0].pred_instances
    np.testing.assert_allclose(out.keypoints, [[[200., 100.]]])
    np.testing.assert_allclose(out.bboxes, [[20., 40., 220., 440.]])


@pytest.mark.parametrize('train_regime', ['matched_only', 'all_queries'])
def test_training_step_on_real_images(train_regime):
    model = tiny_model(train_regime=train_regime).train()
    # At random init the xavier-initialised box regression moves the boxes
    # by O(1) log-scale steps per stage, so after two stages no labelled
    # keypoint lies in its matched box and the keypoint loss is (rightly) 0;
    # damped, the boxes stay near the proposals (the whole image).
    with torch.no_grad():
        for box_decoder in model.head.box_decoders:
            box_decoder.fc_reg.weight.mul_(0.01)
    batch = model.data_preprocessor(real_batch(), training=True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    assert sorted(losses) == sorted(f's{s}.loss_{t}'
                                    for s in range(model.head.num_stages)
                                    for t in ('cls', 'bbox', 'iou', 'kpt'))
    for name, value in losses.items():
        assert torch.isfinite(value), name
        assert value.item() != 0.0, name
    sum(losses.values()).backward()
    params = dict(model.named_parameters())
    assert all(p.grad is not None for p in params.values())
    # Every head parameter learns from the first step.
    head_without_grad = [
        n for n, p in params.items()
        if n.startswith('head.') and not p.grad.abs().sum() > 0
    ]
    assert head_without_grad == []
    # Exactly-zero gradients elsewhere have two known causes at step 0:
    # mmpose's ResNet zero-initialises the last BN of each residual branch
    # (so the layers before it get none yet), and the P4/P5 FPN output
    # convs are used only by RoIs of sqrt(area) >= 224/448 px (mmdet's level
    # mapping), which these ~190x320 inputs do not have.
    zero = {n for n, p in params.items() if not p.grad.abs().sum() > 0}
    for name in zero:
        in_residual_branch = name.startswith('backbone.layer') and (
            '.conv1.' in name or '.bn1.' in name or '.conv2.' in name)
        assert in_residual_branch or name.startswith(
            ('neck.fpn_convs.2.', 'neck.fpn_convs.3.')), name


def test_training_step_with_zero_persons():
    model = tiny_model().train()
    batch = model.data_preprocessor(real_batch(), training=True)
    for sample in batch['data_samples']:
        sample.gt_instances = InstanceData(
            bboxes=np.zeros((0, 4), np.float32),
            keypoints=np.zeros((0, 17, 2), np.float32),
            keypoints_visible=np.zeros((0, 17), np.float32))
    losses = model.loss(batch['inputs'], batch['data_samples'])
    for name, value in losses.items():
        assert torch.isfinite(value), name
    assert losses['s1.loss_cls'].item() > 0
    assert losses['s1.loss_kpt'].item() == 0
    sum(losses.values()).backward()
    assert all(
        torch.isfinite(p.grad).all() for p in model.parameters()
        if p.grad is not None)


@pytest.mark.parametrize('flow', ['serial', 'box_only'])
def test_instance_query_flow_of_fig3(flow):
    """Fig. 3(b) hands the keypoint decoder's Q_I to the next box decoder."""
    model = tiny_model(instance_query_flow=flow).eval()
    batch = model.data_preprocessor(real_batch((0, )), training=False)
    feats = model.extract_feat(batch['inputs'])
    head = model.head
    seen = []
    hook = head.box_decoders[1].register_forward_pre_hook(
        lambda module, args: seen.append(args[1].clone()))
    kpt_out = []
    hook2 = head.keypoint_decoders[0].register_forward_hook(
        lambda module, args, out: kpt_out.append(out['instance_queries']))
    box_out = []
    hook3 = head.box_decoders[0].register_forward_hook(
        lambda module, args, out: box_out.append(out[2]))
    with torch.no_grad():
        head.run_stages(feats, image_whwh(batch['data_samples'], 'cpu'))
    for h in (hook, hook2, hook3):
        h.remove()
    expected = kpt_out[0] if flow == 'serial' else box_out[0].reshape(
        -1, head.in_channels)
    torch.testing.assert_close(seen[0].reshape(-1, head.in_channels), expected)
    assert not torch.allclose(kpt_out[0], box_out[0].reshape(
        -1, head.in_channels))


def test_bad_head_options_are_clear_errors():
    with pytest.raises(ValueError, match='instance_query_flow'):
        tiny_model(instance_query_flow='parallel')
    with pytest.raises(ValueError, match='missing'):
        tiny_model(part_groups=[[0, 1, 2]])
    with pytest.raises(ValueError, match='instance_query_flow'):
        tiny_model(instance_query_flow=dict(train='serial', test='parallel'))
    with pytest.raises(ValueError, match='train_regime'):
        tiny_model(train_regime='matched')
    with pytest.raises(ValueError, match='keypoint_decoder.roi_size'):
        tiny_model(keypoint_decoder=dict(roi_size=14))  # the RoI is 7x7


def test_the_v1_regime_with_the_full_versions_training_flow_warns_once():
    """'matched_only' + full version + serial training flow lets the next
    box decoder read the match: warned at build; the light version, the
    box-only training flow and the paper's regime are not warned about;
    the former name 'official' still builds 'matched_only'."""
    import warnings
    with pytest.warns(UserWarning, match='can read the match'):
        model = tiny_model(train_regime='matched_only')
    assert model.head.train_regime == 'matched_only'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        tiny_model(train_regime='all_queries')
        tiny_model(
            train_regime='matched_only',
            keypoint_decoder=dict(update_instance_query=False))
        tiny_model(
            train_regime='matched_only',
            instance_query_flow=dict(train='box_only', test='serial'))
    assert not [w for w in caught if 'train_regime' in str(w.message)]
    with pytest.warns(DeprecationWarning, match="now called 'matched_only'"):
        model = tiny_model(
            train_regime='official',
            keypoint_decoder=dict(update_instance_query=False))
    assert model.head.train_regime == 'matched_only'


def test_channels_last_model_gives_the_same_stages():
    model = tiny_model().eval()
    batch = model.data_preprocessor(real_batch(), training=False)
    img_whwh = image_whwh(batch['data_samples'], 'cpu')
    with torch.no_grad():
        expected = model.head.run_stages(
            model.extract_feat(batch['inputs']), img_whwh)
        model.to(memory_format=torch.channels_last)
        feats = model.extract_feat(batch['inputs'])
        assert not feats[0].is_contiguous()
        got = model.head.run_stages(feats, img_whwh)
    for stage_expected, stage_got in zip(expected, got):
        for key in ('cls_scores', 'coords', 'sigma_logits'):
            torch.testing.assert_close(
                getattr(stage_got, key),
                getattr(stage_expected, key),
                atol=1e-3,
                rtol=1e-3)
        torch.testing.assert_close(
            stage_got.boxes, stage_expected.boxes, atol=0.05, rtol=0)


def test_non_finite_predictions_are_a_clear_error_not_a_matcher_crash():
    model = tiny_model().train()
    batch = model.data_preprocessor(real_batch(), training=True)
    with torch.no_grad():
        model.head.proposals.init_proposal_features.weight[0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='stage 0'):
        model.loss(batch['inputs'], batch['data_samples'])


def test_a_model_built_without_init_weights_runs():
    """mmpose's init_model and get_flops never call init_weights: the
    proposal boxes are valid from construction (the whole image)."""
    from mmpose.registry import MODELS
    from querypose_mm.testing import get_quickstart_model_cfg
    model = MODELS.build(get_quickstart_model_cfg()).eval()
    boxes = model.head.proposals.init_proposal_bboxes.weight
    assert (boxes[:, :2] == 0.5).all() and (boxes[:, 2:] == 1.0).all()
    batch = model.data_preprocessor(real_batch((0, )), training=False)
    with torch.no_grad():
        preds = model.predict(batch['inputs'], batch['data_samples'])
    assert np.isfinite(preds[0].pred_instances.keypoints).all()


def test_broken_proposal_boxes_are_a_clear_error():
    """A non-positive proposal size (a broken checkpoint) would stop mmcv's
    CPU RoIAlign on an internal assert."""
    model = tiny_model().eval()
    batch = model.data_preprocessor(real_batch((0, )), training=False)
    with torch.no_grad():
        model.head.proposals.init_proposal_bboxes.weight[3, 2] = -0.1
        with pytest.raises(ValueError, match='non-positive'):
            model.predict(batch['inputs'], batch['data_samples'])


def test_non_finite_ground_truth_is_a_clear_error_not_a_matcher_crash():
    model = tiny_model().train()
    batch = model.data_preprocessor(real_batch(), training=True)
    sample = batch['data_samples'][1]
    keypoints = np.array(sample.gt_instances.keypoints, copy=True)
    keypoints[0, 3, 0] = np.inf
    sample.gt_instances.keypoints = keypoints
    with pytest.raises(ValueError, match='non-finite'):
        model.loss(batch['inputs'], batch['data_samples'])


@pytest.mark.parametrize('wh_ratio_clip', [16 / 1000, 16 / 100000])
@pytest.mark.parametrize('growth_only_clip', [False, True])
@pytest.mark.parametrize('log_scale', [6.0, -6.0])
def test_box_size_change_per_stage_is_clamped(wh_ratio_clip, growth_only_clip,
                                              log_scale):
    """mmdet's default lets a side grow or shrink at most 62.5x a stage; the
    official model lets it grow 6250x (log 8.74) and shrink freely."""
    model = tiny_model(
        wh_ratio_clip=wh_ratio_clip, growth_only_clip=growth_only_clip).eval()
    decoder = model.head.box_decoders[0]
    with torch.no_grad():
        decoder.fc_reg.weight.zero_()
        # dw = dh = log_scale after the coder's std of 1
        decoder.fc_reg.bias.copy_(torch.tensor([0., 0., log_scale, log_scale]))
    batch = model.data_preprocessor(real_batch((0, )), training=False)
    feats = model.extract_feat(batch['inputs'])
    img_whwh = image_whwh(batch['data_samples'], 'cpu')
    with torch.no_grad():
        boxes = model.head.run_stages(feats, img_whwh)[0].boxes[0]
    change = (boxes[:, 2] - boxes[:, 0]) / img_whwh[0, 0]
    bound = abs(np.log(wh_ratio_clip))
    if log_scale < 0 and growth_only_clip:
        expected = log_scale
    else:
        expected = np.sign(log_scale) * min(abs(log_scale), bound)
    torch.testing.assert_close(
        change, torch.full_like(change, float(np.exp(expected))))


def test_activation_checkpointing_gives_the_same_losses_and_gradients():
    """keypoint_decoder.with_cp recomputes the conv stack in the backward
    pass: same losses, same gradients for every parameter."""
    results = []
    for with_cp in (False, True):
        model = tiny_model(keypoint_decoder=dict(with_cp=with_cp)).train()
        batch = model.data_preprocessor(real_batch(), training=True)
        losses = model.loss(batch['inputs'], batch['data_samples'])
        sum(losses.values()).backward()
        results.append((losses, {
            name: p.grad.clone()
            for name, p in model.named_parameters() if p.grad is not None
        }))
    (losses, grads), (losses_cp, grads_cp) = results
    for name in losses:
        torch.testing.assert_close(losses_cp[name], losses[name])
    assert sorted(grads_cp) == sorted(grads)
    for name in grads:
        torch.testing.assert_close(
            grads_cp[name], grads[name], rtol=1e-5, atol=1e-7)


def test_bf16_autocast_inference_keeps_scores_and_keypoints_in_float32():
    """Under CPU bf16 autocast (mmengine's test_cfg fp16=True on a CPU) the
    head runs (mmcv's CPU RoIAlign has no bf16: the maps reach it in
    float32) and scores and keypoints come out in float32, close to the
    float32 model's."""
    model = tiny_model().eval()
    model.update_test_cfg(max_per_img=4)
    batch = model.data_preprocessor(real_batch(), training=False)
    with torch.no_grad():
        full = model.predict(batch['inputs'], batch['data_samples'])
        with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
            half = model.predict(batch['inputs'], batch['data_samples'])
    for a, b in zip(full, half):
        a, b = a.pred_instances, b.pred_instances
        assert b.keypoints.dtype == a.keypoints.dtype
        assert b.bbox_scores.dtype == a.bbox_scores.dtype == np.float32
        assert np.isfinite(b.keypoints).all()
        # bf16 keeps ~3 significant digits: scores to 0.05, pixels to a few
        np.testing.assert_allclose(b.bbox_scores, a.bbox_scores, atol=0.05)


@pytest.mark.parametrize(
    'flow, update_instance_query', [('serial', False), ('box_only', True)],
    ids=['light-version', 'box-only-flow'])
def test_score_thr_decodes_only_queries_that_can_reach_it(
        flow, update_instance_query):
    """test_cfg.score_thr: the same persons above the threshold as full
    decoding, in the same order, with one box pass; the keypoint decoders
    see only the queries whose class probability reaches it."""
    model = tiny_model(
        instance_query_flow=flow,
        keypoint_decoder=dict(
            update_instance_query=update_instance_query)).eval()
    head = model.head
    batch = model.data_preprocessor(real_batch(), training=False)
    feats = model.extract_feat(batch['inputs'])
    samples = batch['data_samples']

    def separate_scores(module, args, outputs):
        cls_scores = torch.full_like(outputs[0], -6.0)
        cls_scores[:, :3] = torch.tensor([[3.0], [1.0], [0.0]])
        return (cls_scores, *outputs[1:])

    head.box_decoders[-1].register_forward_hook(separate_scores)
    rows, box_calls = [], []
    for decoder in head.keypoint_decoders:
        decoder.register_forward_pre_hook(
            lambda module, args: rows.append(len(args[0])))
    for decoder in head.box_decoders:
        decoder.register_forward_pre_hook(
            lambda module, args: box_calls.append(1))
    # the bound is tight at 0.5 = sigmoid(0): that query is decoded
    for score_thr in (0.05, 0.5, 0.7, 0.99):
        with torch.no_grad():
            full = head.predict(feats, samples)
            rows.clear()
            box_calls.clear()
            fast = head.predict(
                feats, samples, test_cfg=dict(score_thr=score_thr))
        reach = int((torch.tensor([3.0, 1.0, 0.0]).sigmoid()
                     >= score_thr).sum())
        assert rows == ([2 * reach] * head.num_stages if reach else [])
        assert len(box_calls) == head.num_stages
        for a, b in zip(full, fast):
            keep = a.bbox_scores >= score_thr
            assert len(b) == keep.sum()
            np.testing.assert_allclose(
                b.bbox_scores, a.bbox_scores[keep], rtol=1e-6)
            np.testing.assert_allclose(
                b.keypoints, a.keypoints[keep], atol=1e-4)
            np.testing.assert_allclose(b.bboxes, a.bboxes[keep], atol=1e-4)


def test_score_thr_is_refused_where_set_if_the_box_path_reads_keypoints():
    """The full version with the serial test flow: exact score-threshold
    decoding cannot hold, so test_cfg.score_thr is an error where it is
    set, never at the first predict."""
    from mmpose.registry import MODELS
    from querypose_mm.testing import get_quickstart_model_cfg
    model = tiny_model(instance_query_flow='serial').eval()
    assert not model.head.score_thr_is_exact
    with pytest.raises(ValueError, match='test_cfg.score_thr decodes'):
        model.update_test_cfg(score_thr=0.1)
    with pytest.raises(ValueError, match='test_cfg.score_thr decodes'):
        model.test_cfg['score_thr'] = 0.1
    assert 'score_thr' not in model.test_cfg
    cfg = get_quickstart_model_cfg(
        dict(
            head=dict(instance_query_flow='serial'),
            test_cfg=dict(score_thr=0.1)))
    with pytest.raises(ValueError, match='test_cfg.score_thr decodes'):
        MODELS.build(cfg)
    model.update_test_cfg(max_per_img=3)  # other settings still change
    assert model.test_cfg['max_per_img'] == 3
