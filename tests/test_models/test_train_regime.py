"""The official v1 training regime (``train_regime='matched_only'``): each
stage is matched right after its box decoder and only its matched queries go
through the keypoint decoder; their refined Q_I goes on to the next box
decoder (the serial flow), and the part queries pass on by position among
the matched queries. The side-by-side equality with the official code is
checked by ``tools/analysis/compare_with_official.py``."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from test_querypose_head import real_batch, tiny_model

from querypose_mm.models.losses.set_criterion import StageMatch


def _model(regime='matched_only', **overrides):
    model = tiny_model(train_regime=regime, **overrides).train()
    # damped box regression keeps labelled keypoints in the matched boxes
    # at random init (see test_training_step_on_real_images)
    with torch.no_grad():
        for box_decoder in model.head.box_decoders:
            box_decoder.fc_reg.weight.mul_(0.01)
    return model


def _inputs(model, indices=(0, 1)):
    batch = model.data_preprocessor(real_batch(indices), training=True)
    return batch['inputs'], batch['data_samples']


def _record_matches(head):
    matches = []
    match_stage = head.criterion.match_stage

    def recording(*args):
        matches.append(match_stage(*args))
        return matches[-1]

    head.criterion.match_stage = recording
    return matches


def _force_matches(head, query_inds_per_stage):
    """Match stage s's queries ``query_inds_per_stage[s]`` to the batch's
    persons in order."""
    stage = iter(range(len(query_inds_per_stage)))

    def forced(*args):
        inds = torch.tensor(query_inds_per_stage[next(stage)])
        return StageMatch(inds, torch.arange(len(inds)))

    head.criterion.match_stage = forced


def _hook_inputs(module, store):
    return module.register_forward_pre_hook(
        lambda m, args: store.append([a.detach().clone() for a in args]))


def _num_persons(samples):
    return sum(len(s.gt_instances.bboxes) for s in samples)


@pytest.mark.parametrize('regime', ['matched_only', 'all_queries'])
def test_only_matched_queries_reach_the_keypoint_decoder(regime):
    model = _model(regime)
    inputs, samples = _inputs(model)
    head = model.head
    matches = _record_matches(head)
    seen = []
    for decoder in head.keypoint_decoders:
        _hook_inputs(decoder, seen)
    pose_rois = []
    head.pose_roi_extractor.register_forward_pre_hook(
        lambda m, args: pose_rois.append(len(args[1])))
    model.loss(inputs, samples)
    persons = _num_persons(samples)
    assert persons >= 2
    decoded = persons if regime == 'matched_only' else 2 * head.num_queries
    assert [len(args[0]) for args in seen] == [decoded] * head.num_stages
    assert pose_rois == [decoded] * head.num_stages
    assert [len(m.query_inds) for m in matches] == [persons] * head.num_stages
    if regime == 'matched_only':
        # the matched queries of each stage, in order (image, then query)
        for match in matches:
            assert torch.equal(match.query_inds,
                               match.query_inds.sort().values)


def test_unmatched_queries_keep_the_box_decoders_instance_query():
    """The full version, serial flow: the next box decoder reads the refined
    Q_I of the matched queries and the box decoder's Q_I of the others."""
    model = _model(instance_query_flow=dict(train='serial', test='box_only'))
    head = model.head
    assert head.keypoint_decoders[0].update_instance_query
    inputs, samples = _inputs(model)
    matches = _record_matches(head)
    next_input, box_out, kpt_out = [], [], []
    _hook_inputs(head.box_decoders[1], next_input)
    head.box_decoders[0].register_forward_hook(
        lambda m, args, out: box_out.append(out[2].detach()))
    head.keypoint_decoders[0].register_forward_hook(
        lambda m, args, out: kpt_out.append(out['instance_queries'].detach()))
    model.loss(inputs, samples)
    given = next_input[0][1].reshape(-1, head.in_channels)
    box_q = box_out[0].reshape(-1, head.in_channels)
    matched = matches[0].query_inds
    unmatched = torch.ones(len(given), dtype=torch.bool)
    unmatched[matched] = False
    assert torch.equal(given[unmatched], box_q[unmatched])
    assert torch.equal(given[matched], kpt_out[0])
    assert not torch.allclose(kpt_out[0], box_q[matched])


def test_box_only_flow_never_hands_the_refined_instance_query_on():
    model = _model(instance_query_flow='box_only')
    head = model.head
    inputs, samples = _inputs(model)
    next_input, box_out = [], []
    _hook_inputs(head.box_decoders[1], next_input)
    head.box_decoders[0].register_forward_hook(
        lambda m, args, out: box_out.append(out[2].detach()))
    model.loss(inputs, samples)
    assert torch.equal(next_input[0][1], box_out[0])


@pytest.mark.parametrize('regime', ['matched_only', 'all_queries'])
def test_part_query_hand_over(regime):
    """Official: stage 1's i-th matched query reads stage 0's i-th matched
    query's part queries, whichever queries they are; all queries: each
    query its own."""
    model = _model(regime)
    head = model.head
    inputs, samples = _inputs(model)
    persons = _num_persons(samples)
    n = head.num_queries
    # other queries matched in the two stages
    first = [q for q in range(persons)]
    second = [q + 2 for q in range(persons)]
    for rows in (first, second):
        assert len(set(rows)) == persons and max(rows) < 2 * n
    _force_matches(head, [sorted(first), sorted(second)])
    stage1_in, stage0_out = [], []
    _hook_inputs(head.keypoint_decoders[1], stage1_in)
    head.keypoint_decoders[0].register_forward_hook(
        lambda m, args, out: stage0_out.append(out['part_queries'].detach()))
    model.loss(inputs, samples)
    given = stage1_in[0][2]
    if regime == 'matched_only':
        assert torch.equal(given, stage0_out[0])
    else:
        rows = torch.tensor(second)
        assert torch.equal(given[rows], stage0_out[0][rows])


def test_spegm_batchnorm_statistics_come_from_matched_rois_only():
    model = _model()
    head = model.head
    inputs, samples = _inputs(model)
    norm = head.keypoint_decoders[0].spegm.deconv[1]
    assert isinstance(norm, torch.nn.BatchNorm2d)
    seen = []
    _hook_inputs(norm, seen)
    before = norm.running_mean.clone()
    model.loss(inputs, samples)
    batch = seen[0][0]
    assert len(batch) == _num_persons(samples)
    expected = (1 - norm.momentum) * before + norm.momentum * batch.mean(
        (0, 2, 3))
    torch.testing.assert_close(norm.running_mean, expected)


def test_no_keypoint_gradient_reaches_unmatched_queries():
    """The last stage's keypoint loss reaches its box decoder's Q_I only
    through the matched queries (the light version: no Q_I update)."""
    model = _model(keypoint_decoder=dict(update_instance_query=False))
    head = model.head
    inputs, samples = _inputs(model)
    matches = _record_matches(head)
    box_out = []
    head.box_decoders[-1].register_forward_hook(
        lambda m, args, out: box_out.append(out[2]))
    losses = model.loss(inputs, samples)
    last = head.num_stages - 1
    grad, = torch.autograd.grad(losses[f's{last}.loss_kpt'], box_out[0])
    grad = grad.reshape(-1, head.in_channels).abs().sum(-1)
    matched = matches[last].query_inds
    unmatched = torch.ones_like(grad, dtype=torch.bool)
    unmatched[matched] = False
    assert losses[f's{last}.loss_kpt'].item() > 0
    assert grad[unmatched].max().item() == 0
    assert (grad[matched] > 0).all()


def _without_persons(sample):
    sample.gt_instances = InstanceData(
        bboxes=np.zeros((0, 4), np.float32),
        keypoints=np.zeros((0, 17, 2), np.float32),
        keypoints_visible=np.zeros((0, 17), np.float32))


def test_an_image_without_persons_next_to_one_with_persons():
    model = _model()
    head = model.head
    inputs, samples = _inputs(model)
    _without_persons(samples[1])
    seen = []
    _hook_inputs(head.keypoint_decoders[0], seen)
    matches = _record_matches(head)
    losses = model.loss(inputs, samples)
    persons = _num_persons(samples)
    assert len(seen[0][0]) == persons > 0
    # only image 0's queries are matched
    assert (matches[0].query_inds < head.num_queries).all()
    total = sum(losses.values())
    assert torch.isfinite(total) and losses['s1.loss_kpt'].item() > 0
    total.backward()


def test_a_batch_without_persons_never_runs_the_keypoint_decoder():
    model = _model()
    head = model.head
    inputs, samples = _inputs(model)
    for sample in samples:
        _without_persons(sample)
    seen = []
    for decoder in head.keypoint_decoders:
        _hook_inputs(decoder, seen)
    losses = model.loss(inputs, samples)
    assert seen == []
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['s1.loss_kpt'].item() == 0 < losses['s1.loss_cls'].item()
    sum(losses.values()).backward()
