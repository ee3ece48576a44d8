"""A checkpoint of another model given to the user's entry points (mmpose's
Inferencer, which the demo uses; tools/test.py; the ONNX export) is refused
with an error naming the file, and the export writes nothing."""

import pytest
import torch
import torchvision

from conftest import COCO_MINI, load_tool
from querypose_mm.models.pose_estimators.querypose_estimator import \
    CheckpointMismatchError
from querypose_mm.testing import QUICKSTART_CONFIG, get_config_path

CONFIG = get_config_path(QUICKSTART_CONFIG)


@pytest.fixture(scope='module')
def foreign(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('foreign') / 'resnet18.pth')
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_inferencer_refuses_it(foreign):
    from mmpose.apis import MMPoseInferencer
    with pytest.raises(CheckpointMismatchError, match='resnet18.pth'):
        MMPoseInferencer(pose2d=CONFIG, pose2d_weights=foreign, device='cpu')


def test_tools_test_refuses_it(foreign, tmp_path):
    with pytest.raises(CheckpointMismatchError, match='resnet18.pth'):
        load_tool('tools/test.py').main([
            CONFIG, foreign, '--work-dir',
            str(tmp_path), '--cfg-options',
            f'test_dataloader.dataset.data_root={COCO_MINI}'
        ])


def test_onnx_export_refuses_it_and_writes_nothing(foreign, tmp_path):
    out = tmp_path / 'model.onnx'
    with pytest.raises(CheckpointMismatchError, match='resnet18.pth'):
        load_tool('tools/deployment/pytorch2onnx.py').main(
            [CONFIG, foreign, '--out', str(out)])
    assert not list(tmp_path.iterdir())
