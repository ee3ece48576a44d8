"""Small QueryPose models for tests, built from the project's own configs
(as ``mmpose.testing`` / ``mmdet.testing`` do), so no test copies a head."""
import os.path as osp
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.config import Config

QUICKSTART_CONFIG = ('querypose/coco/'
                     'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')


def get_config_path(rel_path: str) -> str:
    """Absolute path of a config, given relative to the configs folder.

    Looks in the repository's ``configs/`` beside the package, then in the
    package's ``.mim/configs`` (an installed wheel).
    """
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(osp.dirname(package),
                          'configs'), osp.join(package, '.mim', 'configs')):
        path = osp.join(root, rel_path)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'config {rel_path} is neither in the repository\'s configs/ nor in '
        'querypose_mm/.mim/configs')


def get_quickstart_model_cfg(overrides: Optional[Dict] = None) -> Dict:
    """The CPU quick-start model (half-width R18, 64 channels, 12 queries,
    2 stages, 7x7 pose RoI) as a plain dict, updated by ``overrides`` as
    mmengine merges a child config (``ConfigDict.merge``: dicts key by key,
    ``_delete_=True`` replaces)."""
    model = Config.fromfile(get_config_path(QUICKSTART_CONFIG)).model
    model.merge(overrides or {})
    return model.to_dict()


def get_quickstart_head_cfg(**overrides) -> Dict:
    """The quick-start model's ``QueryPoseHead`` config, with
    ``overrides`` merged in (nested dicts key by key)."""
    return get_quickstart_model_cfg(dict(head=overrides))['head']


def build_quickstart_model(seed: int = 0, **head_overrides) -> nn.Module:
    """The quick-start model with ``head_overrides``, seeded and
    initialised (``init_weights``), in train mode."""
    import querypose_mm  # noqa: F401  (registers the modules)
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(seed)
    model = MODELS.build(get_quickstart_model_cfg(dict(head=head_overrides)))
    model.init_weights()
    return model


def finite_training_step(model: nn.Module, samples) -> Dict[str, torch.Tensor]:
    """One forward/backward on ``samples``; asserts that every loss term and
    every gradient is finite, and returns the losses."""
    from mmengine.dataset import pseudo_collate
    model.zero_grad()
    batch = model.data_preprocessor(pseudo_collate(samples), training=True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    for name, value in losses.items():
        assert torch.isfinite(value), name
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name
    return losses
