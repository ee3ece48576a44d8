"""A broken image in a training set: skip-and-log or a clear error, by
config (LoadImageOrSkip.skip_broken)."""
import json
import logging
import os.path as osp
import shutil

import pytest
from mmengine.logging import MMLogger

from conftest import COCO_MINI
from mmpose.datasets import CocoDataset

SOURCE_ANN = osp.join(COCO_MINI, 'annotations',
                      'person_keypoints_train2017.json')
GOOD = 790


@pytest.fixture()
def folder_with_broken_images(tmp_path):
    """One real image, one missing file and one text file named .jpg."""
    with open(SOURCE_ANN) as f:
        source = json.load(f)
    good = next(im for im in source['images'] if im['id'] == GOOD)
    anns = [a for a in source['annotations'] if a['image_id'] == GOOD]
    images, annotations = [good], list(anns)
    for new_id, name in ((1, 'missing.jpg'), (2, 'caption.jpg')):
        images.append(dict(good, id=new_id, file_name=name))
        annotations += [
            dict(a, id=a['id'] * 10 + new_id, image_id=new_id) for a in anns
        ]
    shutil.copy(osp.join(COCO_MINI, 'train2017', good['file_name']), tmp_path)
    (tmp_path / 'caption.jpg').write_text('a caption, not a picture\n')
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(
        json.dumps(
            dict(
                images=images,
                annotations=annotations,
                categories=source['categories'])))
    return tmp_path


def _dataset(folder, skip_broken):
    return CocoDataset(
        data_root=str(folder),
        ann_file='ann.json',
        data_prefix=dict(img=''),
        data_mode='bottomup',
        pipeline=[
            dict(type='LoadImageOrSkip', skip_broken=skip_broken),
            dict(type='FilterInstances'),
            dict(type='PackPoseInputs')
        ])


def _index(dataset, img_id):
    return next(
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['img_id'] == img_id)


@pytest.mark.parametrize('img_id,name', [(1, 'missing.jpg'),
                                         (2, 'caption.jpg')])
def test_default_is_a_clear_error_naming_the_file(folder_with_broken_images,
                                                  img_id, name):
    dataset = _dataset(folder_with_broken_images, skip_broken=False)
    with pytest.raises(Exception, match=name):
        dataset[_index(dataset, img_id)]


def test_skip_broken_logs_each_file_and_trains_on_the_rest(
        folder_with_broken_images):
    dataset = _dataset(folder_with_broken_images, skip_broken=True)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        samples = [dataset[i] for i in range(len(dataset)) for _ in range(3)]
    finally:
        logger.removeHandler(handler)
    # every request is answered with the one readable image
    assert {s['data_samples'].metainfo['img_id'] for s in samples} == {GOOD}
    messages = [r.getMessage() for r in records]
    for name in ('missing.jpg', 'caption.jpg'):
        # logged once, however often it is drawn
        assert sum(name in m for m in messages) == 1, messages
    assert all(r.levelno == logging.WARNING for r in records)
