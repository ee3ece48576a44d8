"""Write a COCO keypoint annotation file restricted to some images.

    python tools/dataset_converters/coco_subset.py SRC.json DST.json \
        --img-ids 790 211325 ...
"""
import argparse
import json
from typing import Sequence

from querypose_mm.utils import dump_json_atomically


def make_coco_subset(src: str, dst: str, img_ids: Sequence[int]) -> dict:
    """Keep the images ``img_ids`` of ``src`` and all their annotations.

    Args:
        src (str): COCO-format annotation file.
        dst (str): Output path; written atomically (temp file + rename).
        img_ids (Sequence[int]): Image ids to keep, every one of which must be
            in ``src``.

    Returns:
        dict: The written annotation dict.
    """
    with open(src) as f:
        coco = json.load(f)
    wanted = {int(i) for i in img_ids}
    known = {img['id'] for img in coco['images']}
    missing = sorted(wanted - known)
    if missing:
        raise ValueError(f'image ids {missing} are not in {src}')
    subset = dict(coco)
    subset['images'] = [img for img in coco['images'] if img['id'] in wanted]
    subset['annotations'] = [
        ann for ann in coco['annotations'] if ann['image_id'] in wanted
    ]
    dump_json_atomically(subset, dst, indent=None)
    return subset


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--img-ids', type=int, nargs='+', required=True)
    args = parser.parse_args()
    subset = make_coco_subset(args.src, args.dst, args.img_ids)
    print(f'{args.dst}: {len(subset["images"])} images, '
          f'{len(subset["annotations"])} annotations')


if __name__ == '__main__':
    main()
