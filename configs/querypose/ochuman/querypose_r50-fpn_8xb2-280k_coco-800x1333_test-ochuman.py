# A COCO-trained QueryPose R50 tested on OCHuman (heavily occluded people;
# 17 COCO keypoints), as crowded-scene papers report: test only, with the
# COCO model's checkpoint. The paper reports no OCHuman figure.
_base_ = ['../coco/querypose_r50-fpn_8xb2-280k_coco-800x1333.py']

data_root = 'data/ochuman/'
test_dataloader = dict(
    dataset=dict(
        type='CheckedOCHumanDataset',
        data_root=data_root,
        ann_file='annotations/ochuman_coco_format_test_range_0.00_1.00.json',
        data_prefix=dict(img='images/')))
test_evaluator = dict(
    ann_file=data_root +
    'annotations/ochuman_coco_format_test_range_0.00_1.00.json',
    prefix='ochuman')
