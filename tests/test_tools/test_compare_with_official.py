"""The side-by-side comparison with the official code
(tools/analysis/official_comparison), without the official code: the
detectron2 / fvcore stand-ins against mmdet / mmcv / torchvision, the
reading of an official checkout (a made-up one), and the verdict on made-up
figures."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS as MMDET_MODELS
from official_comparison import (Thresholds, VersionResult, checks, exit_code,
                                 format_version, import_official, official_cfg,
                                 official_tree, ratio_to_largest,
                                 relative_difference, standin_modules, verdict)
from official_comparison.official_source import MODULE_FILES, PROJECT
from official_comparison.standins import (Boxes, CfgNode, ROIPooler,
                                          box_levels, c2_msra_fill,
                                          c2_xavier_fill, installed,
                                          sigmoid_focal_loss)

from conftest import load_tool
from querypose_mm.models.utils import mmdet_cfg

STRIDES = [4, 8, 16, 32]


def fpn_feats(batch_size=2, channels=8, size=256):
    gen = torch.Generator().manual_seed(0)
    return [
        torch.randn(
            batch_size,
            channels,
            size // s,
            size // s,
            generator=gen,
            dtype=torch.float64) for s in STRIDES
    ]


def person_boxes():
    """Boxes of sides 10 to 500 px (every level, a few just below a
    level's edge: sqrt(area) 112 is P2/P3, 224 P3/P4)."""
    sides = [(10, 14), (40, 60), (100, 124), (111, 113), (150, 220),
             (223, 225), (240, 230), (500, 480)]
    boxes = [[5 + i, 3 + 2 * i, 5 + i + w, 3 + 2 * i + h]
             for i, (w, h) in enumerate(sides)]
    return torch.tensor(boxes, dtype=torch.float64)


def roi_extractor(roi_layer, strides):
    """mmdet's SingleRoIExtractor as the head builds it (finest_scale 56,
    its default)."""
    return MMDET_MODELS.build(
        mmdet_cfg(
            dict(
                type='SingleRoIExtractor',
                roi_layer=roi_layer,
                out_channels=8,
                featmap_strides=strides,
                finest_scale=56)))


# ----------------------------------------------------------------------
# the stand-ins
# ----------------------------------------------------------------------
@pytest.mark.parametrize('output_size,strides', [(7, STRIDES), (14, [4])])
def test_roi_pooler_equals_mmdet_single_roi_extractor(output_size, strides):
    """detectron2's level mapping floor(4 + log2(sqrt(area) / 224)) on
    P2-P5 is mmdet's finest_scale=56; RoIAlignV2 is aligned RoIAlign."""
    feats = fpn_feats()[:len(strides)]
    boxes = person_boxes()
    image_inds = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    rois = torch.cat([image_inds[:, None].double(), boxes], dim=1)
    extractor = roi_extractor(
        dict(
            type='RoIAlign',
            output_size=output_size,
            sampling_ratio=2,
            aligned=True), strides)
    expected = extractor(feats, rois)
    pooler = ROIPooler(output_size, [1 / s for s in strides], 2, 'ROIAlignV2')
    per_image = [Boxes(boxes[image_inds == i]) for i in range(2)]
    pooled = pooler(feats, per_image)
    # the pooler returns image 0's boxes first, then image 1's
    order = torch.cat([torch.nonzero(image_inds == i)[:, 0] for i in range(2)])
    torch.testing.assert_close(pooled, expected[order], rtol=0, atol=1e-12)


def test_box_levels_equal_mmdet_map_roi_levels():
    extractor = roi_extractor(dict(type='RoIAlign', output_size=7), STRIDES)
    boxes = person_boxes()
    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)
    levels = box_levels(boxes, 2, 5)
    assert torch.equal(levels, extractor.map_roi_levels(rois, 4))
    assert levels.tolist() == [0, 0, 0, 0, 1, 1, 2, 3]


def test_roi_pooler_refuses_other_pooler_types():
    with pytest.raises(ValueError, match='ROIAlignV2'):
        ROIPooler(7, [0.25], 2, 'ROIPool')


def test_sigmoid_focal_loss_equals_torchvision():
    from torchvision.ops import sigmoid_focal_loss as torchvision_focal
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 1, generator=gen, dtype=torch.float64)
    labels = (torch.rand(50, 1, generator=gen) < 0.2).double()
    for reduction in ('none', 'sum', 'mean'):
        torch.testing.assert_close(
            sigmoid_focal_loss(logits, labels, 0.25, 2.0, reduction),
            torchvision_focal(logits, labels, 0.25, 2.0, reduction),
            rtol=1e-14,
            atol=0)


def test_c2_fills_are_caffe2_msra_and_xavier():
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 512, 3)
    c2_msra_fill(conv)
    # MSRAFill: normal, std sqrt(2 / fan_out), fan_out = 512 * 3 * 3
    assert conv.weight.std().item() == pytest.approx(
        (2 / (512 * 9))**0.5, rel=0.02)
    assert not conv.bias.any()
    linear = nn.Linear(256, 128)
    c2_xavier_fill(linear)
    # XavierFill: uniform on +-sqrt(3 / fan_in)
    bound = (3 / 256)**0.5
    assert linear.weight.abs().max().item() <= bound
    assert linear.weight.abs().max().item() > 0.98 * bound
    assert not linear.bias.any()


def test_cfg_node_reads_and_merges_as_attributes():
    cfg = CfgNode()
    cfg.merge_dict(dict(MODEL=dict(ROI_HEADS=dict(IN_FEATURES=['p2']))))
    cfg.MODEL.SparseRCNN = CfgNode()
    cfg.MODEL.SparseRCNN.NUM_PROPOSALS = 300
    cfg.merge_dict(dict(MODEL=dict(SparseRCNN=dict(NUM_PROPOSALS=100))))
    assert cfg.MODEL.SparseRCNN.NUM_PROPOSALS == 100
    assert cfg.MODEL.ROI_HEADS.IN_FEATURES == ('p2', )
    with pytest.raises(AttributeError, match='NUM_PART'):
        cfg.MODEL.SparseRCNN.NUM_PART


@pytest.mark.skipif(
    installed('detectron2') or installed('fvcore'),
    reason='the real detectron2 / fvcore are used where installed')
def test_standins_are_installed_only_inside_the_context():
    with standin_modules() as standins:
        from detectron2.modeling.poolers import ROIPooler as pooler
        from fvcore.nn import sigmoid_focal_loss_jit
        assert standins == ['detectron2', 'fvcore']
        assert pooler is ROIPooler
        assert sigmoid_focal_loss_jit is sigmoid_focal_loss
    assert 'detectron2' not in sys.modules
    assert 'fvcore.nn.weight_init' not in sys.modules


def test_standins_can_replace_an_installed_library():
    with standin_modules(['fvcore'], replace_installed=True) as standins:
        from fvcore.nn.weight_init import c2_msra_fill as fill
        assert standins == ['fvcore']
        assert fill is c2_msra_fill


# ----------------------------------------------------------------------
# reading an official checkout (made up: the official code is not here)
# ----------------------------------------------------------------------
FAKE_MODULES = {
    'querypose/head.py':
    ('from detectron2.modeling.poolers import ROIPooler, cat\n'
     'from detectron2.structures import Boxes\n'
     'from fvcore.nn.weight_init import c2_msra_fill, c2_xavier_fill\n'
     'from .util.box_ops import box_cxcywh_to_xyxy\n\n\n'
     'class Decoder:\n\n'
     '    def __init__(self, cfg, roi_input_shape{matcher}):\n'
     '        pass\n'),
    'querypose/loss.py':
    'from fvcore.nn import sigmoid_focal_loss_jit\n',
    'querypose/real_nvp.py':
    '',
    'querypose/config.py': ('from detectron2.config import CfgNode as CN\n\n\n'
                            'def add_querypose_config(cfg):\n'
                            '    cfg.MODEL.SparseRCNN = CN()\n'
                            '    cfg.MODEL.SparseRCNN.NUM_PROPOSALS = 300\n'
                            '    cfg.MODEL.QueryPose = CN()\n'
                            '    cfg.MODEL.QueryPose.LIGHT_VERSION = False\n'),
    'querypose/util/__init__.py':
    '',
    'querypose/util/box_ops.py':
    'def box_cxcywh_to_xyxy(x):\n    return x\n',
    'querypose/util/misc.py':
    '',
    'configs/Base.yaml':
    'MODEL:\n  QueryPose:\n    LIGHT_VERSION: True\n',
    'configs/r50.yaml': ('_BASE_: "Base.yaml"\nMODEL:\n  SparseRCNN:\n'
                         '    NUM_PROPOSALS: 100\n'),
}


def git(repo, *args):
    return subprocess.run(['git', '-C', str(repo), *args],
                          check=True,
                          capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def fake_official(tmp_path):
    """A git work tree with a pre-v1 commit and a v1 commit (the Decoder
    takes the matcher)."""
    repo = tmp_path / 'QueryPose'
    git(tmp_path, 'init', '-q', str(repo))
    commits = []
    for matcher in ('', ', matcher'):
        for name, text in FAKE_MODULES.items():
            path = repo / PROJECT / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace('{matcher}', matcher))
        git(repo, 'add', '-A')
        git(repo, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q',
            '-m', f'api{matcher}')
        commits.append(git(repo, 'rev-parse', 'HEAD'))
    return repo, commits


def test_official_tree_reads_a_work_tree_or_a_revision(fake_official):
    repo, (pre_v1, v1) = fake_official
    with official_tree(str(repo)) as project:
        assert project == osp.join(str(repo), PROJECT)
    with official_tree(str(repo / '.git'), pre_v1[:7]) as project:
        assert sorted(MODULE_FILES) == sorted(
            name for name in MODULE_FILES
            if osp.isfile(osp.join(project, name)))
        assert osp.isfile(osp.join(project, 'configs', 'r50.yaml'))
    assert not osp.exists(project)
    with pytest.raises(ValueError, match='no revision'):
        with official_tree(str(repo), 'nosuchrev'):
            pass
    with pytest.raises(ValueError, match='needs --rev'):
        with official_tree(str(repo / '.git')):
            pass


@pytest.mark.skipif(
    installed('detectron2') or installed('fvcore'),
    reason='the stand-in config node is used without detectron2')
def test_import_official_tells_the_api_and_builds_the_config(fake_official):
    repo, (pre_v1, v1) = fake_official
    with standin_modules():
        for rev, api in ((pre_v1, 'pre-v1'), (v1, 'v1')):
            with official_tree(str(repo), rev) as project:
                official = import_official(project)
                assert official.api == api
                cfg = official_cfg(official, 'r50.yaml', light=False)
    assert cfg.MODEL.SparseRCNN.NUM_PROPOSALS == 100
    assert cfg.MODEL.QueryPose.LIGHT_VERSION is False


# ----------------------------------------------------------------------
# the verdict
# ----------------------------------------------------------------------
def result(**changes) -> VersionResult:
    values = dict(
        version='full',
        losses={
            's0.loss_cls': (1.0, 1.0 + 1e-9),
            's0.loss_kpt': (-2.0, -2.0)
        },
        matches=[([(3, 0), (7, 1)], [(3, 0), (7, 1)])],
        feature_grads=[1e-7, 0.0, 2e-7, 1e-8],
        bn_stats={'head.keypoint_decoders.0.spegm.deconv.1.running_var': 0.},
        keypoints_px=1e-9,
        keypoints_extent=640.0,
        scores=1e-12,
        seconds=1.0)
    values.update(changes)
    return VersionResult(**values)


def test_differences():
    assert relative_difference(0.0, 0.0) == 0.0
    assert relative_difference(2.0, -2.0) == 2.0
    assert relative_difference(1.0, 1.0 + 1e-6) == pytest.approx(
        1e-6, rel=1e-4)
    assert ratio_to_largest(torch.zeros(3), torch.zeros(3)) == 0.0
    assert ratio_to_largest(torch.zeros(3), torch.ones(3)) == float('inf')
    assert ratio_to_largest(torch.tensor([4., -8.]),
                            torch.tensor([4., -7.])) == 0.125


def test_equal_figures_pass_and_the_table_lists_them():
    assert exit_code([result(), result(version='light')]) == 0
    table = format_version(result())
    for term in ('s0.loss_cls', 's0.loss_kpt', 'P2', 'P5', 'running_var',
                 'inference keypoints', 'inference scores'):
        assert term in table
    assert 'FAILS' not in table
    assert verdict([result()]).startswith('EQUAL')


@pytest.mark.parametrize(
    'changes,failing',
    [(dict(losses={'s3.loss_kpt': (0.68, 1.0)}), 'loss s3.loss_kpt'),
     (dict(matches=[([(3, 0)], [(4, 0)])]), 'matches s0'),
     (dict(feature_grads=[1.1e-5]), 'gradient P2'),
     (dict(bn_stats={'bn.running_mean': 0.5}), 'BatchNorm bn.running_mean'),
     (dict(keypoints_px=2e-6), 'inference keypoints (px)'),
     (dict(scores=1e-3), 'inference scores')])
def test_each_figure_beyond_its_threshold_fails(changes, failing):
    bad = result(**changes)
    assert exit_code([result(version='light'), bad]) == 1
    assert [c.name for c in checks(bad) if not c.passed] == [failing]
    assert failing in verdict([bad])
    assert 'FAILS' in format_version(bad)


def test_thresholds_are_inclusive_and_configurable():
    at = result(feature_grads=[1e-5], keypoints_px=1e-6)
    assert exit_code([at]) == 0
    assert exit_code([at], Thresholds(grad_rel=1e-6)) == 1


def test_command_line_sizes():
    tool = load_tool('tools/analysis/compare_with_official.py')
    args = tool.parse_args(
        ['--official-src', 'x', '--image-sizes', '512x640', '448X576'])
    assert args.image_sizes == [(512, 640), (448, 576)]
    assert args.versions == ['light', 'full']
    with pytest.raises(SystemExit):
        tool.parse_args(['--official-src', 'x', '--image-sizes', '512'])
