"""Odd images at inference: handled, or a clear error that names the file."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from PIL import Image

from conftest import COCO_MINI, REPO_ROOT
from querypose_mm.testing import build_quickstart_model

CPU_CONFIG = osp.join(REPO_ROOT, 'configs', 'querypose', 'coco',
                      'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')
PHOTO = osp.join(COCO_MINI, 'val2017', '000000000139.jpg')  # 640x426


@pytest.fixture(scope='module')
def model_and_pipeline():
    init_default_scope('mmpose')
    cfg = Config.fromfile(CPU_CONFIG)
    model = build_quickstart_model().eval()
    return model, Compose(cfg.test_dataloader.dataset.pipeline)


def _predict(model_and_pipeline, path):
    model, pipeline = model_and_pipeline
    data = pipeline(dict(img_path=path, img_id=0, id=0))
    with torch.no_grad():
        return model.test_step(pseudo_collate([data]))[0]


def _photo():
    return cv2.imread(PHOTO)


def _write(tmp_path, name, image):
    path = str(tmp_path / name)
    assert cv2.imwrite(path, image)
    return path


@pytest.mark.parametrize('kind', [
    'grayscale', 'rgba', '16bit', 'tiny_1x1', 'small_32x32', 'huge_4000x3000'
])
def test_valid_odd_images_give_poses_in_the_image(model_and_pipeline, tmp_path,
                                                  kind):
    photo = _photo()
    if kind == 'grayscale':
        path = _write(tmp_path, 'g.jpg', cv2.cvtColor(photo,
                                                      cv2.COLOR_BGR2GRAY))
        size = photo.shape[:2]
    elif kind == 'rgba':
        path = _write(tmp_path, 'a.png', cv2.cvtColor(photo,
                                                      cv2.COLOR_BGR2BGRA))
        size = photo.shape[:2]
    elif kind == '16bit':
        path = _write(tmp_path, 'd.png', photo.astype(np.uint16) * 257)
        size = photo.shape[:2]
    else:
        w, h = {
            'tiny_1x1': (1, 1),
            'small_32x32': (32, 32),
            'huge_4000x3000': (4000, 3000)
        }[kind]
        path = _write(tmp_path, f'{kind}.jpg', cv2.resize(photo, (w, h)))
        size = (h, w)
    sample = _predict(model_and_pipeline, path)
    assert tuple(sample.metainfo['ori_shape']) == size
    pred = sample.pred_instances
    assert 0 < len(pred.keypoints) <= 12
    assert np.all(np.isfinite(pred.keypoints))
    assert np.all(np.isfinite(pred.bbox_scores))
    assert np.all(np.isfinite(pred.bboxes))


def test_exif_rotated_jpeg_is_seen_upright(model_and_pipeline, tmp_path):
    """Pixels stored sideways with EXIF orientation 6 (rotate 90 CW)."""
    upright = Image.open(PHOTO)
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = str(tmp_path / 'exif.jpg')
    stored.save(path, exif=exif.tobytes())
    sample = _predict(model_and_pipeline, path)
    assert tuple(sample.metainfo['ori_shape']) == (upright.height,
                                                   upright.width)


@pytest.mark.parametrize('kind', ['truncated', 'not_an_image', 'missing'])
def test_broken_files_are_clear_errors(model_and_pipeline, tmp_path, kind):
    path = str(tmp_path / f'{kind}.jpg')
    if kind == 'truncated':
        with open(PHOTO, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:200])
    elif kind == 'not_an_image':
        with open(path, 'w') as f:
            f.write('this is a caption, not a picture\n')
    with pytest.raises(Exception) as error:
        _predict(model_and_pipeline, path)
    assert path in str(error.value) or osp.basename(path) in str(
        error.value), repr(error.value)
