"""Annotation files that would give wrong labels are errors naming the file,
the id and the field, where the project's datasets load them; the check
tool lists every problem at once."""
import copy
import json
import os.path as osp
import shutil

import pytest

from conftest import COCO_MINI, load_tool
from mmpose.registry import DATASETS
from querypose_mm.datasets import AnnotationError, find_annotation_problems

SOURCE = osp.join(COCO_MINI, 'annotations', 'person_keypoints_train2017.json')


@pytest.fixture(scope='module')
def source():
    with open(SOURCE) as f:
        return json.load(f)


def _dataset(ann_file, images=osp.join(COCO_MINI, 'train2017')):
    return DATASETS.build(
        dict(
            type='CheckedCocoDataset',
            data_root='',
            ann_file=str(ann_file),
            data_prefix=dict(img=images + '/'),
            data_mode='bottomup',
            pipeline=[dict(type='LoadImage'),
                      dict(type='PackPoseInputs')]))


def _write(tmp_path, data, name='ann.json'):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _duplicate_image_id(d):
    d['images'][1]['id'] = d['images'][0]['id']


def _string_image_id(d):
    d['annotations'][0]['image_id'] = str(d['annotations'][0]['image_id'])


def _short_keypoints(d):
    d['annotations'][0]['keypoints'] = d['annotations'][0]['keypoints'][:-3]


def _text_keypoints(d):
    d['annotations'][0]['keypoints'] = 'x y v'


def _no_bbox(d):
    del d['annotations'][0]['bbox']


def _nan_bbox(d):
    d['annotations'][0]['bbox'][2] = float('nan')


BROKEN = {
    'duplicate image id':
    (_duplicate_image_id, r'image id \d+ is given twice'),
    'image_id of another type':
    (_string_image_id, r'"image_id" \'\d+\' is not the id of an image.*'
     r'\(ids are integers\)'),
    'keypoints of another length':
    (_short_keypoints, r'"keypoints" must be 51 numbers.*got 48'),
    'keypoints of another type':
    (_text_keypoints, r'"keypoints" must be 51 numbers.*got \'x y v\''),
    'missing bbox': (_no_bbox, r'"bbox" must be 4 finite numbers'),
    'non-finite bbox': (_nan_bbox, r'"bbox" must be 4 finite numbers'),
    'missing images': (lambda d: d.pop('images'), '"images" list is missing'),
    'missing annotations': (lambda d: d.pop('annotations'),
                            '"annotations" list is missing'),
    'missing categories': (lambda d: d.pop('categories'),
                           '"categories" list is missing'),
}


def test_the_bundled_files_have_no_problem(source):
    assert find_annotation_problems(source, 17) == []
    assert len(_dataset(SOURCE)) == len(source['images'])


def _refused(tmp_path, source, edit, message):
    """The source file edited by ``edit``: the dataset refuses it with
    ``message`` and names it. Returns the edited data, its file and the
    error."""
    data = copy.deepcopy(source)
    edit(data)
    ann_file = _write(tmp_path, data)
    with pytest.raises(AnnotationError, match=message) as info:
        _dataset(ann_file)
    assert str(ann_file) in str(info.value)
    return data, ann_file, info


@pytest.mark.parametrize('case', sorted(BROKEN))
def test_a_broken_file_is_an_error_naming_file_id_and_field(
        tmp_path, source, case):
    edit, message = BROKEN[case]
    data, _, info = _refused(tmp_path, source, edit, message)
    if edit in (_string_image_id, _short_keypoints, _text_keypoints, _no_bbox,
                _nan_bbox):
        assert f'annotation id {data["annotations"][0]["id"]}' in str(
            info.value)


@pytest.mark.parametrize('content,message', [
    ('', r'the file is empty \(0 bytes\)'),
    ('[1, 2, 3]', 'holds a JSON list, not an object'),
    ('{"images": [', 'not valid JSON'),
])
def test_empty_or_non_object_json_is_an_error(tmp_path, content, message):
    ann_file = _write(tmp_path, content)
    with pytest.raises(AnnotationError, match=message) as info:
        _dataset(ann_file)
    assert str(ann_file) in str(info.value)


def test_an_image_of_another_size_than_the_file_says_names_it(
        tmp_path, source):
    data = copy.deepcopy(source)
    image = data['images'][0]
    image['width'] += 10
    dataset = _dataset(_write(tmp_path, data))
    index = next(
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['img_id'] == image['id'])
    with pytest.raises(
            AnnotationError,
            match=rf'{image["file_name"]} is '
            rf'{image["width"] - 10}x{image["height"]} pixels.*'
            rf'image id {image["id"]} {image["width"]}x'):
        dataset[index]
    dataset[(index + 1) % len(dataset)]  # the others load


def test_check_tool_reports_every_problem_at_once(tmp_path, source, capsys):
    tool = load_tool('tools/misc/check_annotations.py')
    assert tool.main([SOURCE, '--images',
                      osp.join(COCO_MINI, 'train2017')]) == 0
    assert 'no problem found (sizes checked)' in capsys.readouterr().out
    data = copy.deepcopy(source)
    for edit in (_duplicate_image_id, _string_image_id, _short_keypoints):
        edit(data)
    assert tool.main([str(_write(tmp_path, data))]) == 1
    out = capsys.readouterr().out
    # the duplicate id also orphans the persons of the image that lost it
    assert '4 problem(s)' in out
    assert 'is given twice' in out and 'must be 51 numbers' in out
    assert 'is not the id of an image' in out
    # sizes: a copy of one image under the name of another, larger one
    images = tmp_path / 'images'
    images.mkdir()
    for image in source['images']:
        shutil.copy(
            osp.join(COCO_MINI, 'train2017', source['images'][0]['file_name']),
            images / image['file_name'])
    assert tool.main([SOURCE, '--images', str(images)]) == 1
    assert 'pixels, the file says' in capsys.readouterr().out


def test_filter_empty_gt_drops_training_images_of_crowds_only(
        tmp_path, source):
    """filter_cfg=dict(filter_empty_gt=True): the official code's
    FILTER_EMPTY_ANNOTATIONS; evaluation keeps every image."""
    data = copy.deepcopy(source)
    first = data['annotations'][0]['image_id']
    for ann in data['annotations']:
        if ann['image_id'] == first:
            ann['iscrowd'] = 1
    path = _write(tmp_path, data)

    def image_ids(**kwargs):
        dataset = DATASETS.build(
            dict(
                type='CheckedCocoDataset',
                data_root='',
                ann_file=str(path),
                data_prefix=dict(img=osp.join(COCO_MINI, 'train2017') + '/'),
                data_mode='bottomup',
                pipeline=[],
                **kwargs))
        return {
            dataset.get_data_info(i)['img_id']
            for i in range(len(dataset))
        }

    kept = image_ids()
    assert first in kept
    filtered = image_ids(filter_cfg=dict(filter_empty_gt=True))
    assert filtered == kept - {first}
    assert first in image_ids(
        filter_cfg=dict(filter_empty_gt=True), test_mode=True)


def _person_with_keypoints(d):
    return next(a for a in d['annotations']
                if not a['iscrowd'] and a['num_keypoints'] > 0)


def _keypoints_far_outside(d):
    ann = _person_with_keypoints(d)
    ann['keypoints'] = [
        v + 10000 if i % 3 == 0 and ann['keypoints'][i + 2] > 0 else v
        for i, v in enumerate(ann['keypoints'])
    ]


def _zero_width_box(d):
    _person_with_keypoints(d)['bbox'][2] = 0


def _box_wholly_outside(d):
    _person_with_keypoints(d)['bbox'][:2] = [5000.0, 5000.0]


def _another_category(d):
    d['categories'].append(dict(id=2, name='dog', supercategory='animal'))
    _person_with_keypoints(d)['category_id'] = 2


def _all_keypoints_zero(d):
    for ann in d['annotations']:
        ann['keypoints'] = [0] * 51
        ann['num_keypoints'] = 0


def _every_person(edit):
    """``edit`` applied to every non-crowd person with keypoints."""

    def edit_all(d):
        for ann in d['annotations']:
            if not ann['iscrowd'] and ann['num_keypoints'] > 0:
                edit(dict(d, annotations=[ann]))

    return edit_all


TEACHES_NOTHING = {
    'another category':
    (_another_category, r'"category_id" 2 is not a person category'),
    'no person with keypoints anywhere':
    (_all_keypoints_zero,
     'none of the 172 annotations is a person.*nothing can be learned'),
    'no images': (lambda d: d.update(images=[], annotations=[]),
                  'the "images" list is empty'),
    # each single person of these is left out and logged (next test); a
    # file of nothing else teaches nothing
    'every box of no area':
    (_every_person(_zero_width_box),
     r'nothing can be learned.*; 86 person\(s\) whose box has no area'),
    'every box wholly outside the image':
    (_every_person(_box_wholly_outside),
     r'nothing can be learned.*; 86 person\(s\) whose box lies wholly outside'
     ),
    'every person with keypoints far outside the image':
    (_every_person(_keypoints_far_outside),
     r'nothing can be learned.*; 86 person\(s\) whose labelled keypoints '
     'all lie more than 1 px'),
}
# one person of a usable file: left out, counted with its id in the log
LEFT_OUT_ONE = {
    'no_area': _zero_width_box,
    'box_outside': _box_wholly_outside,
    'keypoints_outside': _keypoints_far_outside,
}


@pytest.mark.parametrize('case', sorted(TEACHES_NOTHING))
def test_annotations_that_teach_nothing_are_errors_naming_them(
        tmp_path, source, case):
    """What training would take at a loss of 0 and evaluation at AP 0 or
    -1: named with the file, the annotation and image ids and the field,
    by the dataset and by the check tool."""
    edit, message = TEACHES_NOTHING[case]
    data, ann_file, info = _refused(tmp_path, source, edit, message)
    if case == 'another category':
        ann = _person_with_keypoints(data)  # the edited one
        assert (f'annotation id {ann["id"]} (image id {ann["image_id"]})'
                in str(info.value))
    tool = load_tool('tools/misc/check_annotations.py')
    assert tool.main([str(ann_file)]) == 1


def test_rows_coco_has_are_counted_in_the_log_not_refused(
        tmp_path, source, capsys):
    """Crowd regions and persons without labelled keypoints (COCO has
    both): the load logs how many teach no keypoint."""
    from querypose_mm.datasets import annotation_checks
    lines = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(annotation_checks, 'print_log',
                      lambda line, logger: lines.append(line))
        _dataset(SOURCE)
    assert any('5 crowd region(s)' in line
               and '81 person(s) without a labelled keypoint' in line
               for line in lines), lines
    tool = load_tool('tools/misc/check_annotations.py')
    assert tool.main([SOURCE]) == 0
    assert '5 crowd region(s)' in capsys.readouterr().out


def test_a_person_with_one_stray_keypoint_still_counts(source):
    """One labelled keypoint far outside the image, the others inside: the
    person still teaches those, so it is not left out; with every person
    so, the file is usable."""
    from querypose_mm.datasets import annotation_checks
    data = copy.deepcopy(source)
    persons = [
        ann for ann in data['annotations']
        if not ann['iscrowd'] and ann['num_keypoints'] > 1
    ]
    for ann in persons:
        labelled = [k for k in range(17) if ann['keypoints'][3 * k + 2] > 0]
        ann['keypoints'][3 * labelled[0]] += 10000
    data['annotations'] = persons
    problems, left_out = annotation_checks.check_annotation_data(data, 17)
    assert problems == []
    assert left_out['keypoints_outside'] == []


@pytest.mark.parametrize('kind', sorted(LEFT_OUT_ONE))
def test_one_person_that_teaches_nothing_is_left_out_by_id(
        tmp_path, source, kind):
    """A box of no area, a box or labelled keypoints outside the image, on
    one person of a usable file (real data sets hold a few): the file
    loads, and the log names the kind and the annotation id."""
    from querypose_mm.datasets import annotation_checks
    data = copy.deepcopy(source)
    LEFT_OUT_ONE[kind](data)
    ann = _person_with_keypoints(data)
    ann_file = _write(tmp_path, data)
    assert annotation_checks.check_annotation_data(data,
                                                   17)[1][kind] == [ann['id']]
    lines = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(annotation_checks, 'print_log',
                      lambda line, logger: lines.append(line))
        _dataset(ann_file)
    assert any(annotation_checks.LEFT_OUT[kind] in line
               and f'annotation ids {ann["id"]})' in line
               for line in lines), lines


def test_a_missing_data_root_names_the_setting(tmp_path):
    with pytest.raises(
            FileNotFoundError,
            match=r'annotation file .* does not exist.*'
            r"data_root='.*nowhere'.*data_root=DIR"):
        DATASETS.build(
            dict(
                type='CheckedCocoDataset',
                data_root=str(tmp_path / 'nowhere'),
                ann_file='annotations/person_keypoints_train2017.json',
                data_prefix=dict(img='train2017/'),
                data_mode='bottomup',
                pipeline=[]))
    with pytest.raises(
            FileNotFoundError,
            match=r'image folder .*missing.* does not exist.*'
            'data_prefix.img'):
        _dataset(SOURCE, images=str(tmp_path / 'missing'))
