"""The official-checkpoint converter, on official-format state dicts built
here from a key/shape table of the official modules (detectron2 names), for
a small model: the quick-start head on a tiny HRNet with either neck."""
import collections
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import COCO_MINI, REPO_ROOT
from mmpose.registry import MODELS
from querypose_mm.testing import get_quickstart_model_cfg
from querypose_mm.utils.official_checkpoint import (convert_state_dict,
                                                    load_official_checkpoint,
                                                    official_model_kind)

CONVERTER = osp.join(REPO_ROOT, 'tools', 'model_converters',
                     'querypose_official_to_mmpose.py')
BRANCHES = [8, 16, 32, 64]


def _tiny_hrnet() -> dict:
    """The HRNet-W32 base config's backbone with one block per branch and
    branches of 8..64 channels, random weights."""
    from mmengine.config import Config
    backbone = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', '_base_', 'models',
                 'querypose_hrnet-w32-fpn.py')).model.backbone.to_dict()
    backbone['init_cfg'] = None
    for i, stage in enumerate(('stage1', 'stage2', 'stage3', 'stage4')):
        extra = backbone['extra'][stage]
        extra['num_modules'] = 1
        extra['num_blocks'] = (1, ) * max(i + 1, 1)
        extra['num_channels'] = (8, ) if i == 0 else tuple(BRANCHES[:i + 1])
    return backbone


# the official part order and sizes (scheme (c))
OFFICIAL_PARTS = [5, 2, 2, 2, 2, 2, 2]


def model_cfg(light: bool, neck: str) -> dict:
    """The quick-start head (64 channels, 2 stages) on a tiny HRNet and the
    official neck, in the converted configs' inference regime."""
    cfg = get_quickstart_model_cfg(
        dict(
            head=dict(
                keypoint_decoder=dict(update_instance_query=not light),
                instance_query_flow='box_only',
                wh_ratio_clip=16 / 100000,
                keypoint_offset=-0.5)))
    cfg['backbone'] = _tiny_hrnet()
    cfg['neck'] = dict(
        type='mmdet.HRFPN', in_channels=BRANCHES, out_channels=64,
        num_outs=4) if neck == 'HRFPN' else dict(
            type='HRFPNv1', in_channels=BRANCHES, out_channels=64)
    return cfg


def official_shapes(model, light: bool, neck: str) -> dict:
    """The official model's keys and shapes for our small config: the
    detectron2 QueryPose modules (head.py, fpn.py, real_nvp.py), written
    out; the pose-HRNet backbone shares mmpose HRNet's names."""
    head = model.head
    c, d, ff = head.in_channels, head.proposals.init_part_queries.weight.shape[
        1], 256
    dyn, roi = 16, 7
    shapes = collections.OrderedDict()
    shapes['init_proposal_features.weight'] = (head.num_queries, c)
    shapes['init_proposal_boxes.weight'] = (head.num_queries, 4)
    shapes['part_query.weight'] = (7, d)
    for key, value in model.backbone.state_dict().items():
        shapes['backbone.bottom_up.' + key] = tuple(value.shape)
    shapes['backbone.reduction_conv.0.weight'] = (c, sum(BRANCHES), 1, 1)
    shapes['backbone.reduction_conv.0.bias'] = (c, )
    for i in range(5):  # the 5th is never used
        shapes[f'backbone.fpn_conv.{i}.weight'] = (c, c, 3, 3)
        shapes[f'backbone.fpn_conv.{i}.bias'] = (c, )
    if neck == 'HRFPN_v1':
        for i, channels in enumerate(BRANCHES):  # the 1st is never used
            shapes[f'backbone.lateral_conv.{i}.weight'] = (c, channels, 1, 1)
            shapes[f'backbone.lateral_conv.{i}.bias'] = (c, )

    def dynamic_conv(prefix):
        shapes[prefix + 'dynamic_layer.weight'] = (2 * c * dyn, c)
        shapes[prefix + 'dynamic_layer.bias'] = (2 * c * dyn, )
        for norm, size in (('norm1', dyn), ('norm2', c), ('norm3', c)):
            shapes[prefix + norm + '.weight'] = (size, )
            shapes[prefix + norm + '.bias'] = (size, )
        shapes[prefix + 'out_layer.weight'] = (c, c * roi * roi)
        shapes[prefix + 'out_layer.bias'] = (c, )

    def linear(prefix, out, inp, bias=True):
        shapes[prefix + 'weight'] = (out, inp)
        if bias:
            shapes[prefix + 'bias'] = (out, )

    def norm(prefix, size):
        shapes[prefix + 'weight'] = shapes[prefix + 'bias'] = (size, )

    def attention(prefix, dim):
        shapes[prefix + 'in_proj_weight'] = (3 * dim, dim)
        shapes[prefix + 'in_proj_bias'] = (3 * dim, )
        linear(prefix + 'out_proj.', dim, dim)

    for s in range(head.num_stages):
        box = f'head.head_series.{s}.'
        attention(box + 'self_attn.', c)
        dynamic_conv(box + 'inst_interact.')
        linear(box + 'linear1.', ff, c)
        linear(box + 'linear2.', c, ff)
        for i in (1, 2, 3):
            norm(box + f'norm{i}.', c)
        linear(box + 'cls_module.0.', c, c, bias=False)
        norm(box + 'cls_module.1.', c)
        for i in range(3):
            linear(box + f'reg_module.{3 * i}.', c, c, bias=False)
            norm(box + f'reg_module.{3 * i + 1}.', c)
        linear(box + 'class_logits.', 1, c)
        linear(box + 'bboxes_delta.', 4, c)
        pose = f'head.pose_head_series.{s}.'
        shapes[pose + 'inst_convs.0.weight'] = (c, c, 3, 3)  # 1 conv
        shapes[pose + 'inst_convs.0.bias'] = (c, )
        if not light:
            dynamic_conv(pose + 'pose_decoder_inst_interact.')
            norm(pose + 'inst_norm.', c)
            norm(pose + 'norm2.', c)
            linear(pose + 'linear1.', ff, c)
            linear(pose + 'linear2.', c, ff)
        spegm = pose + 'part_embed_generator.'
        shapes[spegm + 'upsample.0.weight'] = (c, c, 4, 4)
        norm(spegm + 'upsample.1.', c)
        shapes[spegm + 'upsample.1.running_mean'] = (c, )
        shapes[spegm + 'upsample.1.running_var'] = (c, )
        shapes[spegm + 'upsample.1.num_batches_tracked'] = ()
        shapes[spegm + 'LSA_conv.weight'] = (7, c, 3, 3)
        shapes[spegm + 'LSA_conv.bias'] = (7, )
        linear(spegm + 'fc.', d, c)
        linear(pose + 'updater.fc1.', d // 4, d, bias=False)
        norm(pose + 'updater.norm_fc1.', d // 4)
        linear(pose + 'updater.fc2.', 2 * d, d // 4)
        linear(pose + 'updater.fc3.', d, d, bias=False)  # never used
        norm(pose + 'updater.norm_fc3.', d)  # never used
        attention(pose + 'kps_self_attn.', d)
        norm(pose + 'self_attn_norm.', d)
        linear(pose + 'linear1_l.', ff, d)
        linear(pose + 'linear2_l.', d, ff)
        norm(pose + 'norm2_l.', d)
        for p, size in enumerate(OFFICIAL_PARTS):
            linear(pose + f'residual_filter.{p}.', d, c)
            linear(pose + f'fc_coord.{p}.linear.', 2 * size, d)
            linear(pose + f'fc_sigma.{p}.linear.', 2 * size, d)
    flow = 'criterion.flow.flow.'
    shapes[flow + 'mask'] = (6, 2)
    for net in ('s', 't'):
        for i in range(6):
            for j, (out, inp) in zip((0, 2, 4), ((64, 2), (64, 64), (2, 64))):
                linear(f'{flow}{net}.{i}.{j}.', out, inp)
    return shapes


def official_state_dict(model, light, neck, seed=0):
    gen = torch.Generator().manual_seed(seed)
    state_dict = collections.OrderedDict()
    for key, shape in official_shapes(model, light, neck).items():
        if key.endswith('num_batches_tracked'):
            state_dict[key] = torch.tensor(7)
        elif key.endswith('running_var'):
            state_dict[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith('flow.mask'):
            state_dict[key] = torch.tensor([[0., 1.], [1., 0.]] * 3)
        else:
            state_dict[key] = 0.1 * torch.randn(shape, generator=gen)
    boxes = state_dict['init_proposal_boxes.weight']
    boxes[:, :2] = 0.5
    boxes[:, 2:] = 0.8
    return state_dict


def _model(light, neck):
    torch.manual_seed(0)
    return MODELS.build(model_cfg(light, neck)).eval()


@pytest.mark.parametrize(
    'light, neck', [(True, 'HRFPN'), (False, 'HRFPN_v1')],
    ids=['light-hrfpn', 'full-hrfpnv1'])
def test_every_official_key_is_mapped_and_loads_strictly(light, neck):
    model = _model(light, neck)
    official = official_state_dict(model, light, neck)
    converted, dropped, filled = convert_state_dict(
        official, model.state_dict(),
        model.head.keypoint_decoders[0].part_groups)
    model.load_state_dict(converted, strict=True)
    unused = {'backbone.fpn_conv.4.weight', 'backbone.fpn_conv.4.bias'}
    if neck == 'HRFPN_v1':
        unused |= {
            'backbone.lateral_conv.0.weight', 'backbone.lateral_conv.0.bias'
        }
    for s in range(model.head.num_stages):
        unused |= {
            f'head.pose_head_series.{s}.updater.fc3.weight',
            f'head.pose_head_series.{s}.updater.norm_fc3.weight',
            f'head.pose_head_series.{s}.updater.norm_fc3.bias'
        }
    assert set(dropped) == unused
    assert sorted(filled) == [
        'head.criterion.loss_keypoint.flow_model.cov',
        'head.criterion.loss_keypoint.flow_model.loc'
    ]
    ours = model.state_dict()
    pairs = {
        'init_proposal_boxes.weight':
        'head.proposals.init_proposal_bboxes.weight',
        'part_query.weight':
        'head.proposals.init_part_queries.weight',
        'backbone.bottom_up.stage4.0.fuse_layers.3.0.0.0.weight':
        'backbone.stage4.0.fuse_layers.3.0.0.0.weight',
        'backbone.reduction_conv.0.weight':
        'neck.reduction_conv.conv.weight',
        'backbone.fpn_conv.3.bias':
        'neck.fpn_convs.3.conv.bias',
        'head.head_series.1.self_attn.in_proj_weight':
        'head.box_decoders.1.attention.attn.in_proj_weight',
        'head.head_series.1.inst_interact.out_layer.weight':
        'head.box_decoders.1.instance_interactive_conv.fc_layer.weight',
        'head.head_series.0.reg_module.6.weight':
        'head.box_decoders.0.reg_fcs.6.weight',
        'head.head_series.0.bboxes_delta.bias':
        'head.box_decoders.0.fc_reg.bias',
        'head.pose_head_series.1.inst_convs.0.weight':
        'head.keypoint_decoders.1.conv_stack.0.weight',
        'head.pose_head_series.1.part_embed_generator.upsample.1.running_var':
        'head.keypoint_decoders.1.spegm.deconv.1.running_var',
        'head.pose_head_series.0.updater.fc2.bias':
        'head.keypoint_decoders.0.sim.gate.3.bias',
        'head.pose_head_series.0.linear2_l.weight':
        'head.keypoint_decoders.0.part_ffn.layers.1.weight',
        'criterion.flow.flow.s.5.4.weight':
        'head.criterion.loss_keypoint.flow_model.s.5.4.weight',
    }
    if neck == 'HRFPN_v1':
        pairs['backbone.lateral_conv.3.weight'] = \
            'neck.lateral_convs.2.conv.weight'
    if not light:
        update = 'head.pose_head_series.1.pose_decoder_inst_interact.'
        pairs[update + 'norm1.bias'] = \
            'head.keypoint_decoders.1.instance_conv.norm_in.bias'
        pairs['head.pose_head_series.1.linear1.weight'] = \
            'head.keypoint_decoders.1.instance_ffn.layers.0.0.weight'
    for official_key, our_key in pairs.items():
        assert torch.equal(ours[our_key], official[official_key]), our_key


def test_per_part_linears_become_per_keypoint_heads_in_coco_order():
    """Numerically: the official per-part linears (coordinate linear on the
    L2-normalised part query, sigma linear, per-part Q_I projection),
    concatenated in the official post-processing order, equal ours."""
    model = _model(True, 'HRFPN')
    official = official_state_dict(model, True, 'HRFPN')
    converted, _, _ = convert_state_dict(
        official, model.state_dict(),
        model.head.keypoint_decoders[0].part_groups)
    model.load_state_dict(converted)
    decoder = model.head.keypoint_decoders[1]
    torch.manual_seed(3)
    part_queries = torch.randn(5, 7, 32)
    instance_queries = torch.randn(5, 64)
    prefix = 'head.pose_head_series.1.'

    def official_part_outputs(kind, norm):
        out = []
        for p in range(7):
            x = part_queries[:, p]
            w = official[f'{prefix}{kind}.{p}.linear.weight']
            y = x @ w.T
            if norm:
                y = y / x.norm(dim=1, keepdim=True)
            out.append(y + official[f'{prefix}{kind}.{p}.linear.bias'])
        face, shoulder, lew, rew, hip, lka, rka = out
        # the official post_process: keypoints back in COCO order
        return torch.cat([
            face, shoulder, lew[:, :2], rew[:, :2], lew[:, 2:], rew[:, 2:],
            hip, lka[:, :2], rka[:, :2], lka[:, 2:], rka[:, 2:]
        ], 1).view(5, 17, 2)

    with torch.no_grad():
        torch.testing.assert_close(
            decoder.coord_head(part_queries),
            official_part_outputs('fc_coord', norm=True))
        torch.testing.assert_close(
            decoder.sigma_head(part_queries),
            official_part_outputs('fc_sigma', norm=False))
        residual = decoder.instance_to_part(instance_queries).view(5, 7, 32)
        for p in range(7):
            expected = instance_queries @ official[
                f'{prefix}residual_filter.{p}.weight'].T + official[
                    f'{prefix}residual_filter.{p}.bias']
            torch.testing.assert_close(residual[:, p], expected)


def test_wrong_version_or_layout_is_a_clear_error():
    light_model, full_model = _model(True, 'HRFPN'), _model(False, 'HRFPN')
    parts = light_model.head.keypoint_decoders[0].part_groups
    light = official_state_dict(light_model, True, 'HRFPN')
    with pytest.raises(ValueError, match='is the light version'):
        convert_state_dict(light, full_model.state_dict(), parts)
    full = official_state_dict(full_model, False, 'HRFPN')
    with pytest.raises(ValueError, match='is the full version'):
        convert_state_dict(full, light_model.state_dict(), parts)
    broken = dict(light)
    del broken['head.head_series.1.norm3.bias']
    broken['head.head_series.0.mystery.weight'] = torch.zeros(1)
    broken['part_query.weight'] = torch.zeros(7, 16)
    with pytest.raises(ValueError) as error:
        convert_state_dict(broken, light_model.state_dict(), parts)
    message = str(error.value)
    assert 'head.head_series.0.mystery.weight' in message
    assert 'head.box_decoders.1.ffn_norm.bias' in message
    assert 'head.proposals.init_part_queries.weight: official (7, 16)' in \
        message


@pytest.mark.parametrize('light, neck', [(True, 'HRFPN'), (False, 'HRFPN'),
                                         (True, 'HRFPN_v1'),
                                         (False, 'HRFPN_v1')])
def test_the_neck_and_version_are_read_from_the_keys(light, neck):
    official = official_state_dict(_model(light, neck), light, neck)
    version = 'light' if light else 'full'
    assert official_model_kind(official) == (neck, version)
    # and the converter's config of that kind is that model
    from mmengine.config import Config
    tool = _load_converter()
    cfg = Config.fromfile(
        osp.join(tool.CONFIGS, tool.CONFIG_BY_KIND[neck, version]))
    assert cfg.model.neck.type == dict(
        HRFPN='mmdet.HRFPN', HRFPN_v1='HRFPNv1')[neck]
    assert cfg.model.head.keypoint_decoder.update_instance_query != light


def test_a_checkpoint_of_neither_kind_says_what_is_missing():
    full = official_state_dict(_model(False, 'HRFPN'), False, 'HRFPN')
    half = {
        k: v
        for k, v in full.items()
        if not k.startswith('head.pose_head_series.1.pose_decoder_inst')
    }
    with pytest.raises(ValueError, match=r'stages \[0\] but not in \[1\]'):
        official_model_kind(half)
    no_neck = {k: v for k, v in full.items() if 'reduction_conv' not in k}
    with pytest.raises(ValueError, match='neither HRFPN'):
        official_model_kind(no_neck)
    with pytest.raises(ValueError, match='not a checkpoint'):
        official_model_kind({'backbone.conv.weight': torch.zeros(1)})


def _load_converter():
    import importlib.util
    spec = importlib.util.spec_from_file_location('converter', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_truncated_or_foreign_files_are_clear_errors(tmp_path):
    model = _model(True, 'HRFPN')
    path = str(tmp_path / 'official.pth')
    torch.save(dict(model=official_state_dict(model, True, 'HRFPN')), path)
    assert len(load_official_checkpoint(path)) > 100
    with open(path, 'rb') as f:
        data = f.read()
    truncated = str(tmp_path / 'truncated.pth')
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ValueError, match='could not be read'):
        load_official_checkpoint(truncated)
    mmengine_ckpt = str(tmp_path / 'ours.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), mmengine_ckpt)
    with pytest.raises(ValueError, match='mmengine checkpoint'):
        load_official_checkpoint(mmengine_ckpt)
    detector = str(tmp_path / 'other.pth')
    torch.save(dict(model={'backbone.conv.weight': torch.zeros(1)}), detector)
    with pytest.raises(ValueError, match='no QueryPose keypoint decoder'):
        load_official_checkpoint(detector)


def test_convert_then_test_and_infer_with_mmposes_tools(tmp_path):
    """The command-line converter writes an mmengine checkpoint that
    tools/test.py evaluates and MMPoseInferencer draws with, and the
    keypoints land in mmpose's frame (detectron2's +0.5 taken off)."""
    from mmengine.config import Config
    model = _model(True, 'HRFPN')
    source = str(tmp_path / 'official.pth')
    torch.save(dict(model=official_state_dict(model, True, 'HRFPN')), source)
    config = str(tmp_path / 'tiny_official.py')
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'querypose', 'coco',
                 'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py'))
    cfg.model = model_cfg(True, 'HRFPN')
    cfg.test_dataloader.dataset.data_root = COCO_MINI
    cfg.dump(config)
    target = str(tmp_path / 'converted.pth')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    out = subprocess.run(
        [sys.executable, CONVERTER, source, target, '--config', config],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'dropped, never used by the official model (8)' in out.stdout
    out = subprocess.run([
        sys.executable, 'tools/test.py', config, target, '--work-dir',
        str(tmp_path / 'test'), '--cfg-options',
        'test_dataloader.dataset.ann_file='
        'annotations/person_keypoints_train2017_quickstart.json',
        'test_dataloader.dataset.data_prefix.img=train2017/'
    ],
                         cwd=REPO_ROOT,
                         capture_output=True,
                         text=True,
                         env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'coco/AP' in out.stdout + out.stderr

    from mmpose.apis import MMPoseInferencer
    inferencer = MMPoseInferencer(
        pose2d=config, pose2d_weights=target, device='cpu')
    image = osp.join(COCO_MINI, 'val2017', '000000000139.jpg')
    result = next(inferencer(image, vis_out_dir=str(tmp_path / 'vis')))
    assert osp.isfile(tmp_path / 'vis' / '000000000139.jpg')
    persons = result['predictions'][0]
    assert len(persons) == 12 and len(persons[0]['keypoints']) == 17

    # the frame: the same model without the offset puts every keypoint
    # exactly 0.5 px further right and down in the original image
    shifted = MMPoseInferencer(
        pose2d=config, pose2d_weights=target, device='cpu')
    shifted.inferencer.model.head.keypoint_offset = 0.0
    plain = next(shifted(image))['predictions'][0]
    np.testing.assert_allclose(
        np.array([p['keypoints'] for p in plain]) - 0.5,
        np.array([p['keypoints'] for p in persons]),
        atol=1e-3)
