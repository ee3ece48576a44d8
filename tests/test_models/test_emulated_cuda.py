"""The model on CUDA, emulated on the CPU (querypose_mm.testing.EmulatedCuda):
every tensor on the model's device, and no host sync in a training step
beyond the inherent ones."""
from collections import Counter

import pytest
import torch
from test_querypose_head import real_batch

from querypose_mm.models.utils import TRAIN_REGIMES
from querypose_mm.testing import EmulatedCuda, build_quickstart_model
from querypose_mm.utils import cuda_support


@pytest.fixture
def mmcv_cuda_ops_present(monkeypatch):
    """The model's check of mmcv's CUDA ops passes (this mmcv may have
    CPU ops only; the kernels run on the CPU anyway)."""
    monkeypatch.setattr(cuda_support, 'mmcv_cuda_ops_problem', lambda: None)
    cuda_support.require_mmcv_cuda_ops.cache_clear()
    yield
    cuda_support.require_mmcv_cuda_ops.cache_clear()


def _on_emulated_cuda(emu, training, **head_overrides):
    """The quick-start model and a 2-image batch, moved to the GPU."""
    model = build_quickstart_model(**head_overrides).train(training)
    batch = model.data_preprocessor(real_batch(), training=training)
    with emu:
        model.cuda()
    return model, emu.move(batch['inputs']), batch['data_samples']


def _inherent_syncs(num_stages: int) -> Counter:
    """The host syncs a training step cannot avoid: per stage one copy of
    the matching costs to the CPU for scipy's Hungarian solver, and mmdet's
    RoI extractor's ``nonzero`` for each of the 4 box levels."""
    return Counter({
        'set_criterion.py:match_stage': num_stages,
        'single_level_roi_extractor.py:forward': 4 * num_stages,
    })


@pytest.mark.parametrize('regime', TRAIN_REGIMES)
def test_training_step_stays_on_the_gpu_and_syncs_only_where_inherent(
        regime, mmcv_cuda_ops_present):
    emu = EmulatedCuda()
    model, inputs, samples = _on_emulated_cuda(
        emu, training=True, train_regime=regime)
    assert next(model.parameters()).is_cuda is False  # outside the mode
    emu.syncs.clear()
    with emu:
        losses = model.loss(inputs, samples)
        assert all(loss.is_cuda for loss in losses.values())
        sum(losses.values()).backward()
    assert emu.mixes == []
    assert emu.sync_counts() == _inherent_syncs(model.head.num_stages)


def test_prediction_stays_on_the_gpu(mmcv_cuda_ops_present):
    emu = EmulatedCuda()
    # a box path that score_thr's exact decoding accepts
    model, inputs, samples = _on_emulated_cuda(
        emu,
        training=False,
        instance_query_flow=dict(train='serial', test='box_only'))
    with emu, torch.no_grad():
        model.predict(inputs, samples)
        model.test_cfg = dict(model.test_cfg, score_thr=0.1)
        model.predict(inputs, samples)
        model(inputs, None, mode='tensor')
    assert emu.mixes == []


def test_moving_the_model_to_cuda_without_mmcv_cuda_ops_names_the_fix(
        monkeypatch):
    monkeypatch.setattr(cuda_support, 'mmcv_cuda_ops_problem',
                        lambda: 'mmcv was built without CUDA ops')
    cuda_support.require_mmcv_cuda_ops.cache_clear()
    model = build_quickstart_model()
    with pytest.raises(RuntimeError, match='setup_env.sh --cuda yes'):
        with EmulatedCuda():
            model.cuda()
    cuda_support.require_mmcv_cuda_ops.cache_clear()
    model.to('cpu')  # no check on the CPU
