"""Checks of a COCO-style keypoint annotation file, before its labels are
used.

mmpose's loaders trust the file: two images with one id merge their persons
onto one image's pixels, an ``image_id`` of another type drops the person, a
keypoint list of another length fails deep inside numpy, persons of
another category are trained on as persons. One pass over the parsed file
finds all of that (for a file of COCO train2017's size, 262k persons: 1.8 s
without the image-bounds and category checks on 2 quiet cores; with them
5.3 s against 3.7 s without, on 2 cores shared with other jobs). The rows
that teach no keypoint are no error one by one: crowd regions and persons
without labelled keypoints (COCO has them by design), and a person whose box
has no area or lies outside its image, or all of whose labelled keypoints
do (real data sets hold a few such rows). They are counted in the same pass
(:func:`check_annotation_data`) and logged, the unusual ones with their
ids. A file from which nothing can be learned or evaluated (no image, or no
person left with a labelled keypoint) is an error.
:class:`CheckedAnnotationsMixin` runs the checks where mmpose's datasets
load the file; ``tools/misc/check_annotations.py``
reports every problem of a file at once.
"""
import json
import math
import numbers
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmengine.logging import print_log

SHOWN_PROBLEMS = 10
_JSON_NUMBERS = {int, float}
# a labelled keypoint may lie this far outside the image (rounding)
KEYPOINT_MARGIN = 1.0


class AnnotationError(ValueError):
    """An annotation file whose content would give wrong labels."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite_number(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def check_annotation_data(
        data, num_keypoints: int) -> Tuple[List[str], Dict[str, List]]:
    """Every problem of a parsed COCO-style keypoint file, and the rows that
    teach no keypoint, in one pass.

    Args:
        data: The parsed JSON.
        num_keypoints (int): K of the data set (``keypoints`` holds 3K
            numbers: x, y, visibility).

    Returns:
        list[str]: One line per problem, naming the entry (image or
        annotation id, or its position) and the field; empty if none.
    """
    if not isinstance(data, dict):
        return [
            f'the file holds a JSON {type(data).__name__}, not an object '
            'with "images", "annotations" and "categories"'
        ], {}
    problems = [
        f'the "{key}" list is missing'
        for key in ('images', 'annotations', 'categories')
        if not isinstance(data.get(key), list)
    ]
    if problems:
        return problems, {}
    if not data['images']:
        return [
            'the "images" list is empty: there is nothing to train or '
            'evaluate on'
        ], {}
    image_ids, sizes = _check_images(data['images'], problems)
    left_out: Dict[str, List] = {kind: [] for kind in LEFT_OUT}
    labelled = _check_annotations(data['annotations'], image_ids, sizes,
                                  _person_categories(data['categories']),
                                  num_keypoints, problems, left_out)
    if not problems and not labelled:
        problems.append(
            f'none of the {len(data["annotations"])} annotations is a person '
            '(not a crowd region) with a box in its image and a labelled '
            'keypoint (visibility 1 or 2) inside it: nothing can be learned '
            'or evaluated from this file (' + format_left_out(left_out) + ')')
    return problems, left_out


def find_annotation_problems(data, num_keypoints: int) -> List[str]:
    """The problems of :func:`check_annotation_data`."""
    return check_annotation_data(data, num_keypoints)[0]


def _person_categories(categories: list) -> set:
    """The ids of the categories with keypoints (all, if none has)."""
    ids = [c.get('id') for c in categories if isinstance(c, dict)]
    with_keypoints = [
        c.get('id') for c in categories
        if isinstance(c, dict) and isinstance(c.get('keypoints'), list)
    ]
    return set(with_keypoints or ids)


# why an annotation teaches no keypoint, in the words of the log
LEFT_OUT = {
    'crowd':
    'crowd region(s) (ignored areas in evaluation)',
    'no_keypoints':
    'person(s) without a labelled keypoint (box losses only, '
    'not evaluated)',
    'no_area':
    'person(s) whose box has no area (dropped by the pipeline)',
    'box_outside':
    'person(s) whose box lies wholly outside the image '
    '(dropped by the pipeline)',
    'keypoints_outside':
    'person(s) whose labelled keypoints all lie more than '
    f'{KEYPOINT_MARGIN:g} px outside the image (they teach nothing: '
    'outside every predicted box)',
}
# the kinds COCO has by design; the others are named by annotation id
_COCO_KINDS = ('crowd', 'no_keypoints')


def left_out_reason(ann: dict, size: Optional[Tuple]) -> Optional[str]:
    """Why a well-formed annotation teaches no keypoint (a key of
    :data:`LEFT_OUT`), or None. ``size`` is its image's (width, height),
    if known."""
    if ann.get('iscrowd'):
        return 'crowd'
    x, y, w, h = ann['bbox']
    if w == 0 or h == 0:
        return 'no_area'
    if size is not None and (x >= size[0] or y >= size[1] or x + w <= 0
                             or y + h <= 0):
        return 'box_outside'
    keypoints = ann.get('keypoints') or []
    if not any(keypoints[2::3]):
        return 'no_keypoints'
    if size is not None and not _labelled_inside(keypoints, *size):
        return 'keypoints_outside'
    return None


def _check_images(images: list, problems: List[str]) -> Tuple[Dict, Dict]:
    ids: Dict = {}
    sizes: Dict = {}
    for index, image in enumerate(images):
        where = f'images[{index}]'
        if not isinstance(image, dict):
            problems.append(f'{where} is not an object')
            continue
        image_id = image.get('id')
        if not _is_int(image_id):
            problems.append(f'{where}: "id" must be an integer, got '
                            f'{image_id!r}')
            continue
        where = f'image id {image_id}'
        if image_id in ids:
            problems.append(
                f'{where} is given twice ({ids[image_id]} and '
                f'{image.get("file_name")!r}): their persons would be '
                'trained and evaluated on one of the two pictures')
            continue
        ids[image_id] = image.get('file_name')
        if not isinstance(image.get('file_name'), str):
            problems.append(f'{where}: "file_name" is missing')
        size_ok = True
        for key in ('width', 'height'):
            if not _is_finite_number(image.get(key)) or image[key] <= 0:
                problems.append(f'{where}: "{key}" must be a positive number, '
                                f'got {image.get(key)!r}')
                size_ok = False
        if size_ok:
            sizes[image_id] = (image['width'], image['height'])
    return ids, sizes


def _check_annotations(annotations: list, image_ids: Dict, sizes: Dict,
                       categories: set, num_keypoints: int,
                       problems: List[str], left_out: Dict[str, List]) -> int:
    """Add the problems of the annotations to ``problems`` and the ids of
    the well-formed ones that teach no keypoint to ``left_out`` (by
    :func:`left_out_reason`); the number of the others."""
    seen = set()
    labelled = 0
    for index, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            problems.append(f'annotations[{index}] is not an object')
            continue
        ann_id = ann.get('id')
        where = (f'annotation id {ann_id}'
                 if _is_int(ann_id) else f'annotations[{index}]')
        if not _is_int(ann_id):
            problems.append(f'{where}: "id" must be an integer, got '
                            f'{ann_id!r}')
        elif ann_id in seen:
            problems.append(f'{where} is given twice: the index keeps one')
        seen.add(ann_id)
        image_id = ann.get('image_id')
        if image_id not in image_ids or not _is_int(image_id):
            problems.append(
                f'{where}: "image_id" {image_id!r} is not the id of an '
                'image of the file' +
                (' (ids are integers)' if isinstance(image_id, str) else ''))
        else:
            where += f' (image id {image_id})'
        size = sizes.get(image_id) if _is_int(image_id) else None
        category = ann.get('category_id')
        if categories and 'category_id' in ann and category not in categories:
            problems.append(
                f'{where}: "category_id" {category!r} is not a person '
                f'category of the file ({sorted(categories)}); it would be '
                'trained and evaluated as a person: remove it or give it '
                'the person category')
        bbox, bbox_ok = ann.get('bbox'), False
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(_is_finite_number(v) for v in bbox)):
            problems.append(f'{where}: "bbox" must be 4 finite numbers '
                            f'[x, y, w, h], got {bbox!r}')
        elif bbox[2] < 0 or bbox[3] < 0:
            problems.append(f'{where}: "bbox" has a negative width or height '
                            f'({bbox!r})')
        else:
            bbox_ok = True
        keypoints, keypoints_ok = ann.get('keypoints'), False
        if keypoints is None:
            keypoints_ok = True  # a person without keypoints
        elif not (isinstance(keypoints, list)
                  and len(keypoints) == 3 * num_keypoints):
            count = len(keypoints) if isinstance(keypoints, list) else None
            problems.append(
                f'{where}: "keypoints" must be {3 * num_keypoints} numbers '
                f'(x, y, v for each of the {num_keypoints} keypoints), got ' +
                (f'{count}' if count is not None else repr(keypoints)))
        # set(map(type, ...)) and sum(...) run in C (4x faster than a loop)
        elif not (set(map(type, keypoints)) <= _JSON_NUMBERS
                  and math.isfinite(sum(keypoints))):
            problems.append(f'{where}: "keypoints" holds a value that is not '
                            'a finite number')
        elif not set(keypoints[2::3]) <= {0, 1, 2}:
            problems.append(f'{where}: keypoint visibility must be 0, 1 or 2')
        else:
            keypoints_ok = True
        if bbox_ok and keypoints_ok:
            reason = left_out_reason(ann, size)
            if reason is None:
                labelled += 1
            else:
                left_out[reason].append(ann_id)
    return labelled


def _labelled_inside(keypoints: list, width: float, height: float) -> bool:
    """Whether a labelled keypoint lies within :data:`KEYPOINT_MARGIN` of
    the image (a person with one stray keypoint still teaches the others).
    """
    low, high_x, high_y = (-KEYPOINT_MARGIN, width + KEYPOINT_MARGIN,
                           height + KEYPOINT_MARGIN)
    return any(
        v > 0 and low <= x <= high_x and low <= y <= high_y
        for x, y, v in zip(keypoints[0::3], keypoints[1::3], keypoints[2::3]))


def format_left_out(left_out: Dict[str, List]) -> str:
    """:func:`check_annotation_data`'s left-out rows in words, with the
    first ids of those that are not COCO's by design."""
    parts = []
    for kind, ids in left_out.items():
        if ids or kind in _COCO_KINDS:
            shown = '' if kind in _COCO_KINDS or not ids else (
                ' (annotation ids ' + ', '.join(map(str, ids[:3])) +
                (', ...' if len(ids) > 3 else '') + ')')
            parts.append(f'{len(ids)} {LEFT_OUT[kind]}{shown}')
    return 'left out, teaching no keypoint: ' + '; '.join(parts)


def format_problems(ann_file: str,
                    problems: List[str],
                    limit: Optional[int] = SHOWN_PROBLEMS) -> str:
    shown = problems if limit is None else problems[:limit]
    lines = [f'{ann_file}: {len(problems)} problem(s) in the annotations:']
    lines += [f'- {problem}' for problem in shown]
    if len(shown) < len(problems):
        lines.append(f'- ... and {len(problems) - len(shown)} more; '
                     f'python tools/misc/check_annotations.py {ann_file} '
                     'lists them all')
    return '\n'.join(lines)


def read_annotation_file(ann_file: str) -> Tuple[object, List[str]]:
    """Parse ``ann_file``; the parsed JSON (None if it cannot be) and the
    problems of reading it."""
    if osp.getsize(ann_file) == 0:
        return None, ['the file is empty (0 bytes)']
    try:
        with open(ann_file) as f:
            return json.load(f), []
    except (ValueError, UnicodeDecodeError) as error:
        return None, [f'not valid JSON ({error})']


class CheckedAnnotationsMixin:
    """Check the annotation file where an mmpose COCO-style dataset loads it
    (before ``BaseCocoStyleDataset._load_annotations``'s labels are used),
    and each image, once read, against the size the file gives it (persons
    are clipped to that size).

    ``filter_cfg=dict(filter_empty_gt=True)`` (mmdet's name) also drops, in
    bottom-up training, the images without a non-crowd person, as the
    official code's ``DATALOADER.FILTER_EMPTY_ANNOTATIONS`` does (images
    without any annotation are never in mmpose's bottom-up training list).
    """

    def filter_data(self) -> List[dict]:
        data_list = super().filter_data()
        if (self.filter_cfg or {}).get('filter_empty_gt', False) and \
                self.data_mode == 'bottomup' and not self.test_mode:
            data_list = [
                info for info in data_list
                if any(not crowd for crowd in info.get('iscrowd', []))
            ]
        return data_list

    def _load_annotations(self):
        num_keypoints = self.metainfo['num_keypoints']
        self._check_paths()
        try:
            result = super()._load_annotations()
        except Exception as error:
            data, problems = read_annotation_file(self.ann_file)
            if data is not None:
                problems = find_annotation_problems(data, num_keypoints)
            if problems:
                raise AnnotationError(
                    format_problems(self.ann_file, problems)) from error
            raise
        problems, left_out = check_annotation_data(self.coco.dataset,
                                                   num_keypoints)
        if problems:
            raise AnnotationError(format_problems(self.ann_file, problems))
        if any(left_out.values()):
            print_log(
                f'{self.ann_file}: {format_left_out(left_out)}',
                logger='current')
        # mmpose drops self.coco once the data list is built
        self.annotated_sizes = {
            image['id']: (image['width'], image['height'])
            for image in self.coco.dataset['images']
        }
        return result

    def _check_paths(self) -> None:
        """Name the setting to fix when the file or the image folder is
        missing (mmpose fails in ``osp.getsize``, naming neither)."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'annotation file {self.ann_file} does not exist (the '
                f'dataset\'s data_root={self.data_root!r} joined with its '
                'ann_file); set data_root to the folder that holds the data, '
                'e.g. --cfg-options train_dataloader.dataset.data_root=DIR '
                '(and val_/test_dataloader)')
        images = (self.data_prefix or {}).get('img')
        if images and not osp.isdir(images):
            raise FileNotFoundError(
                f'image folder {images} does not exist (the dataset\'s '
                f'data_root={self.data_root!r} joined with data_prefix.img); '
                'set data_root (or data_prefix.img) to the folder that holds '
                'the images')

    def prepare_data(self, idx: int):
        packed = super().prepare_data(idx)
        # None: a transform dropped the sample (training draws another)
        if packed is not None:
            meta = packed['data_samples'].metainfo
            annotated = self.annotated_sizes.get(meta.get('img_id'))
            height, width = meta.get('ori_shape', (None, None))[:2]
            if annotated is not None and (width, height) != annotated:
                raise AnnotationError(
                    f'{meta.get("img_path")} is {width}x{height} pixels, '
                    f'but {self.ann_file} gives image id {meta["img_id"]} '
                    f'{annotated[0]}x{annotated[1]} ("width" x "height"): '
                    'its persons would be clipped to the wrong size; fix the '
                    'file (python tools/misc/check_annotations.py FILE '
                    '--images DIR lists every such image)')
        return packed
