"""Checks of a COCO-style keypoint annotation file, before its labels are
used.

mmpose's loaders trust the file: two images with one id merge their persons
onto one image's pixels, an ``image_id`` of another type drops the person, a
keypoint list of another length fails deep inside numpy. One pass over the
parsed file finds all of that (1.8 s for a file of COCO train2017's size,
262k persons, on 2 busy cores). :class:`CheckedAnnotationsMixin` runs it
where mmpose's datasets load the file; ``tools/misc/check_annotations.py``
reports every problem of a file at once.
"""
import json
import math
import numbers
import os.path as osp
from typing import Dict, List, Optional, Tuple

SHOWN_PROBLEMS = 10
_JSON_NUMBERS = {int, float}


class AnnotationError(ValueError):
    """An annotation file whose content would give wrong labels."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite_number(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def find_annotation_problems(data, num_keypoints: int) -> List[str]:
    """Every problem of a parsed COCO-style keypoint file.

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
        ]
    problems = [
        f'the "{key}" list is missing'
        for key in ('images', 'annotations', 'categories')
        if not isinstance(data.get(key), list)
    ]
    if problems:
        return problems
    image_ids = _check_images(data['images'], problems)
    _check_annotations(data['annotations'], image_ids, num_keypoints, problems)
    return problems


def _check_images(images: list, problems: List[str]) -> Dict:
    ids: Dict = {}
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
        for key in ('width', 'height'):
            if not _is_finite_number(image.get(key)) or image[key] <= 0:
                problems.append(f'{where}: "{key}" must be a positive number, '
                                f'got {image.get(key)!r}')
    return ids


def _check_annotations(annotations: list, image_ids: Dict, num_keypoints: int,
                       problems: List[str]) -> None:
    seen = set()
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
        bbox = ann.get('bbox')
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(_is_finite_number(v) for v in bbox)):
            problems.append(f'{where}: "bbox" must be 4 finite numbers '
                            f'[x, y, w, h], got {bbox!r}')
        elif bbox[2] < 0 or bbox[3] < 0:
            problems.append(f'{where}: "bbox" has a negative width or height '
                            f'({bbox!r})')
        keypoints = ann.get('keypoints')
        if keypoints is None:
            continue  # a person without keypoints (mmpose skips it)
        if not (isinstance(keypoints, list)
                and len(keypoints) == 3 * num_keypoints):
            size = len(keypoints) if isinstance(keypoints, list) else None
            problems.append(
                f'{where}: "keypoints" must be {3 * num_keypoints} numbers '
                f'(x, y, v for each of the {num_keypoints} keypoints), got ' +
                (f'{size}' if size is not None else repr(keypoints)))
        # set(map(type, ...)) and sum(...) run in C (4x faster than a loop)
        elif not (set(map(type, keypoints)) <= _JSON_NUMBERS
                  and math.isfinite(sum(keypoints))):
            problems.append(f'{where}: "keypoints" holds a value that is not '
                            'a finite number')
        elif not set(keypoints[2::3]) <= {0, 1, 2}:
            problems.append(f'{where}: keypoint visibility must be 0, 1 or 2')


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
        problems = find_annotation_problems(self.coco.dataset, num_keypoints)
        if problems:
            raise AnnotationError(format_problems(self.ann_file, problems))
        # mmpose drops self.coco once the data list is built
        self.annotated_sizes = {
            image['id']: (image['width'], image['height'])
            for image in self.coco.dataset['images']
        }
        return result

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
