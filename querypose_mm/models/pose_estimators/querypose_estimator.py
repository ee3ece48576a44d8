import warnings
from functools import partial
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor

from mmpose.models.pose_estimators import BottomupPoseEstimator
from mmpose.registry import MODELS
from mmpose.utils.typing import ConfigType, OptConfigType, SampleList
from ...utils.checkpoint_file import pop_checkpoint_file_read
from ...utils.cuda_support import require_mmcv_cuda_ops
from ..utils import (PRECISIONS, QUERYPOSE_BF16_POLICY, check_positive_ints,
                     checked_choice)

# what a checkpoint may lack: the RLE flow is used by the training loss only,
# and BatchNorm's counter is not a weight
_OPTIONAL_KEYS = ('head.criterion.', )
_OPTIONAL_SUFFIXES = ('num_batches_tracked', )
_SHOWN = 3  # keys listed per kind of mismatch


def check_test_cfg(test_cfg: dict,
                   owner: str = 'model.test_cfg',
                   head=None) -> None:
    """Fail on a ``test_cfg`` value QueryPose would not honour as asked.

    Args:
        test_cfg (dict): ``max_per_img``, ``score_thr``, ``precision``,
            ``flip_test`` (mmpose's, always False here); other keys (e.g.
            the Inferencer's ``output_heatmaps``) are left alone.
        owner (str): How the user reaches it, for the messages.
        head (QueryPoseHead, optional): The model's head, whose test-time
            box path exact score-threshold decoding needs to leave the
            keypoint decoders out.
    """
    if test_cfg.get('decode_topk') is not None:
        raise ValueError(f'{owner}.decode_topk was replaced by '
                         'test_cfg.score_thr (exact score-threshold '
                         'decoding); remove it')
    if test_cfg.get('max_per_img') is not None:
        check_positive_ints(owner, max_per_img=test_cfg['max_per_img'])
    score_thr = test_cfg.get('score_thr')
    # not (0 <= x <= 1) also refuses nan
    if score_thr is not None and not (isinstance(score_thr, (int, float))
                                      and not isinstance(score_thr, bool)
                                      and 0 <= score_thr <= 1):
        raise ValueError(f'{owner}.score_thr must be a pose score in [0, 1], '
                         f'got {score_thr!r}')
    if score_thr is not None and head is not None and not getattr(
            head, 'score_thr_is_exact', True):
        raise ValueError(
            f'{owner}.score_thr decodes the keypoints of the queries that can '
            'reach it after the box stages, which needs a box path that does '
            'not read the keypoint decoders: the light version '
            '(keypoint_decoder.update_instance_query=False) or '
            "instance_query_flow=dict(..., test='box_only'); this model "
            'hands the refined Q_I on at test time')
    if test_cfg.get('flip_test', False):
        raise ValueError('QueryPose does not implement flip test; set '
                         f'{owner}.flip_test=False')
    checked_choice(f'{owner}.precision', test_cfg.get('precision', 'fp32'),
                   PRECISIONS)


class CheckedTestCfg(dict):
    """A model's ``test_cfg``: a dict whose every change passes ``check``
    first (a refused change leaves it as it was)."""

    def __init__(self, settings: dict, check: Callable[[dict], None]) -> None:
        check(settings)
        super().__init__(settings)
        self._check = check

    def __setitem__(self, key: str, value) -> None:
        self._check({**self, key: value})
        super().__setitem__(key, value)

    def update(self, *args, **kwargs) -> None:
        updated = dict(self)
        updated.update(*args, **kwargs)
        self._check(updated)
        super().update(updated)

    def setdefault(self, key: str, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self) -> dict:
        return dict(self)

    def __reduce__(self) -> tuple:
        # pickle would set the items before ``_check``
        return type(self), (dict(self), self._check)


class CheckpointMismatchError(ValueError):
    """A checkpoint whose weights do not cover the model."""


@MODELS.register_module()
class QueryPoseEstimator(BottomupPoseEstimator):
    """mmpose's ``BottomupPoseEstimator`` that refuses a checkpoint which does
    not fit it.

    mmengine loads checkpoints non-strictly and only logs a warning, so a
    checkpoint of another model (or another head) would run on random
    weights. Every load of this model (``Runner`` ``load_from`` and
    ``--resume``, mmpose's ``init_model``, the Inferencer, this project's
    tools) is checked once, after the version hooks have renamed old keys:
    a missing weight, an unexpected one or one of another shape is an
    error naming the file and a few keys, unless ``partial_checkpoint``.

    Under any autocast :data:`QUERYPOSE_BF16_POLICY` keeps the box decoders
    and the keypoint coordinate and sigma heads in float32.
    ``test_cfg.precision='bf16'`` runs inference under ``torch.autocast``
    in bfloat16 (oneDNN's AMX / AVX512-BF16 kernels on a CPU), with the
    policy's channels-last conv stacks and SPEGM. Switching back to
    training (``train()``, which mmengine's train loop calls after each
    validation) restores their NCHW layout, so that a bf16 validation
    leaves the trained weights' strides (and DDP's gradient buckets, which
    match them) as they were.

    Moving the model to CUDA (``.cuda()``, ``.to('cuda')``) checks once
    that mmcv has the CUDA ops it calls (:func:`require_mmcv_cuda_ops`).

    Args:
        partial_checkpoint (bool): Only warn (mmengine's behaviour), e.g. to
            fine-tune from a checkpoint of another data set's head.
        **kwargs: :class:`BottomupPoseEstimator`'s arguments.
    """

    def __init__(self,
                 head: ConfigType,
                 test_cfg: OptConfigType = None,
                 partial_checkpoint: bool = False,
                 **kwargs) -> None:
        head, test_cfg = _max_per_img_in_test_cfg(head, test_cfg)
        super().__init__(head=head, test_cfg=test_cfg, **kwargs)
        self.test_cfg = dict(self.test_cfg)  # checked with the head
        QUERYPOSE_BF16_POLICY.keep_float32(self)
        self.partial_checkpoint = partial_checkpoint
        self.register_load_state_dict_post_hook(self._check_loaded_keys)

    @property
    def test_cfg(self) -> CheckedTestCfg:
        """``max_per_img`` (persons kept per image, every query if unset),
        ``score_thr``, ``precision``; checked at build and at every change
        (:func:`check_test_cfg`)."""
        return self._test_cfg

    @test_cfg.setter
    def test_cfg(self, settings: dict) -> None:
        # mmpose's base class sets it before the head is built
        head = self._modules.get('head')
        self._test_cfg = CheckedTestCfg(settings,
                                        partial(check_test_cfg, head=head))

    def update_test_cfg(self, **settings) -> None:
        """Change ``test_cfg`` settings of a built model (a tool's option),
        through the checks the config's values get at build.

        Raises:
            ValueError: Naming the setting, if a value is not allowed; the
                model's ``test_cfg`` is then left as it was.
        """
        self.test_cfg.update(settings)

    def _apply(self, fn, *args, **kwargs) -> 'QueryPoseEstimator':
        """``nn.Module._apply`` (``.cuda()``, ``.to()``, ...): on CUDA,
        first check that mmcv has the CUDA ops the model calls (once)."""
        module = super()._apply(fn, *args, **kwargs)
        if next(self.parameters()).is_cuda:
            require_mmcv_cuda_ops()
        return module

    def train(self, mode: bool = True) -> 'QueryPoseEstimator':
        """``nn.Module.train``; in training the layout of the bf16 mode is
        undone (a no-op where it was never set)."""
        if mode:
            policy = QUERYPOSE_BF16_POLICY
            for module in policy.modules(self, policy.channels_last):
                module.to(memory_format=torch.contiguous_format)
        return super().train(mode)

    def predict(self, inputs: Tensor, data_samples: SampleList) -> SampleList:
        """mmpose's prediction, in ``test_cfg.precision``."""
        if self.test_cfg.get('precision', 'fp32') != 'bf16':
            return super().predict(inputs, data_samples)
        with QUERYPOSE_BF16_POLICY.inference(self, inputs.device.type):
            return super().predict(inputs, data_samples)

    def _load_from_state_dict(self, state_dict, prefix, *args,
                              **kwargs) -> None:
        # called before any submodule, with every key of the checkpoint
        self._checkpoint_file = pop_checkpoint_file_read()
        self._checkpoint_prefix = prefix
        self._checkpoint_shapes = {
            key[len(prefix):]: tuple(value.shape)
            for key, value in state_dict.items()
            if key.startswith(prefix) and hasattr(value, 'shape')
        }
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _check_loaded_keys(self, module, incompatible_keys) -> None:
        prefix = self._checkpoint_prefix
        missing = _required(incompatible_keys.missing_keys, prefix)
        unexpected = _required(incompatible_keys.unexpected_keys, prefix)
        model_shapes = {
            key: tuple(value.shape)
            for key, value in self.state_dict().items()
        }
        reshaped = {
            key: (self._checkpoint_shapes[key], shape)
            for key, shape in model_shapes.items()
            if self._checkpoint_shapes.get(key, shape) != shape
        }
        if self.partial_checkpoint or not (missing or unexpected or reshaped):
            return
        expected = len(model_shapes)
        lines = [
            f'checkpoint {self._checkpoint_file or "(a state dict)"} does '
            'not fit this model:'
        ]
        if missing:
            lines.append(f'- it lacks {len(missing)} of the model\'s '
                         f'{expected} weights, e.g. {_some(missing)}')
        if unexpected:
            lines.append(f'- it holds {len(unexpected)} weights the model '
                         f'does not have, e.g. {_some(unexpected)}')
        if reshaped:
            lines.append(f'- {len(reshaped)} weights have another shape '
                         '(checkpoint vs model), e.g. ' +
                         ', '.join(f'{key}: {a} vs {b}' for key,
                                   (a, b) in list(reshaped.items())[:_SHOWN]))
        counts = _count_mismatch(reshaped, self.head)
        if counts:
            lines.append('- ' + '; '.join(counts))
        lines.append(
            'An official QueryPose checkpoint must be converted first '
            '(tools/model_converters/querypose_official_to_mmpose.py); a '
            'checkpoint trained with another head needs that config (or '
            '--cfg-options for the head); to fine-tune from it on purpose, '
            'set model.partial_checkpoint=True.')
        raise CheckpointMismatchError('\n'.join(lines))


def _max_per_img_in_test_cfg(head: ConfigType,
                             test_cfg: OptConfigType) -> Tuple[dict, dict]:
    """Move a config's former ``head.max_per_img`` to
    ``test_cfg.max_per_img`` (where a ``test_cfg`` value wins), with a
    DeprecationWarning."""
    test_cfg = dict(test_cfg or {})
    if 'max_per_img' not in head:
        return head, test_cfg
    head = dict(head)
    max_per_img = head.pop('max_per_img')
    warnings.warn(
        'model.head.max_per_img is now model.test_cfg.max_per_img; move it '
        'there',
        DeprecationWarning,
        stacklevel=3)
    test_cfg.setdefault('max_per_img', max_per_img)
    return head, test_cfg


def _required(keys: List[str], prefix: str) -> List[str]:
    keys = [key[len(prefix):] for key in keys if key.startswith(prefix)]
    return [
        key for key in keys if not key.startswith(_OPTIONAL_KEYS)
        and not key.endswith(_OPTIONAL_SUFFIXES)
    ]


def _some(keys: List[str]) -> str:
    shown = ', '.join(keys[:_SHOWN])
    return shown + (', ...' if len(keys) > _SHOWN else '')


def _count_mismatch(reshaped: Dict[str, Tuple[tuple, tuple]],
                    head) -> List[str]:
    """The head sizes a reshaped weight tells, in the user's words."""
    told = []
    for key, what, setting in (
        ('head.keypoint_decoders.0.coord_head.weight', 'keypoints',
         'num_keypoints'),
        ('head.proposals.init_proposal_bboxes.weight', 'queries',
         'num_queries'),
    ):
        if key in reshaped:
            told.append(f'the checkpoint has {reshaped[key][0][0]} {what}, '
                        f'the head {getattr(head, setting)} '
                        f'(model.head.{setting})')
    return told
