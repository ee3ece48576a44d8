"""Report every problem of a COCO-style keypoint annotation file at once.

    python tools/misc/check_annotations.py FILE [--num-keypoints K]
        [--images DIR]

The checks are the ones the project's datasets run when they load a file
(unique integer image ids, annotations of existing images, 3K keypoint
numbers, finite boxes with an area inside the image, labelled keypoints
inside the image, the person category, required keys, at least one image
and one person with a labelled keypoint); with ``--images`` also every
image's size in DIR against the file's width/height (read from the image
headers). Exits 1 if anything is wrong; otherwise it also counts the rows
that teach no keypoint (crowd regions, persons without labelled keypoints).
"""
import argparse
import os.path as osp
import sys

from PIL import Image

from querypose_mm.datasets.annotation_checks import (check_annotation_data,
                                                     format_left_out,
                                                     format_problems,
                                                     read_annotation_file)
from querypose_mm.engine.cli import positive_int


def size_problems(data: dict, image_dir: str) -> list:
    problems = []
    for image in data['images']:
        path = osp.join(image_dir, str(image.get('file_name')))
        try:
            with Image.open(path) as picture:
                width, height = picture.size
        except OSError as error:
            problems.append(f'image id {image.get("id")}: {path} cannot be '
                            f'read ({error})')
            continue
        if (width, height) != (image.get('width'), image.get('height')):
            problems.append(
                f'image id {image.get("id")}: {path} is {width}x{height} '
                f'pixels, the file says {image.get("width")}x'
                f'{image.get("height")}')
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('ann_file')
    parser.add_argument(
        '--num-keypoints',
        type=positive_int,
        default=17,
        help='keypoints per person (COCO 17, CrowdPose 14, AIC 14)')
    parser.add_argument(
        '--images', help='the image folder, to compare the sizes')
    args = parser.parse_args(argv)
    data, problems = read_annotation_file(args.ann_file)
    if data is not None:
        problems, left_out = check_annotation_data(data, args.num_keypoints)
        if args.images and not problems:
            problems = size_problems(data, args.images)
    if problems:
        print(format_problems(args.ann_file, problems, limit=None))
        return 1
    print(f'{args.ann_file}: {len(data["images"])} images, '
          f'{len(data["annotations"])} annotations, no problem found' +
          (' (sizes checked)' if args.images else '') + '; ' +
          format_left_out(left_out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
