# QueryPose R50 on AI Challenger (14 keypoints): the worked example of
# docs/custom_dataset.md. The paper reports no AIC figure; not trained here.
_base_ = ['../coco/querypose_r50-fpn_8xb2-280k_coco-800x1333.py']

data_root = 'data/aic/'
# metainfo (names, flip pairs, OKS sigmas): mmpose's _base_/datasets/aic.py
dataset_type = 'CheckedAicDataset'

# AIC order: 0/3 right/left shoulder, 1/4 elbow, 2/5 wrist, 6/9 hip,
# 7/10 knee, 8/11 ankle, 12 head top, 13 neck. Seven rigid parts as the
# paper's scheme (c): head, shoulders, right and left elbow + wrist, hips,
# right and left knee + ankle.
model = dict(
    head=dict(
        num_keypoints=14,
        part_groups=[[12, 13], [0, 3], [1, 2], [4, 5], [6, 9], [7, 8],
                     [10, 11]]))

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/aic_train.json',
        data_prefix=dict(img='ai_challenger_keypoint_train_20170902/'
                         'keypoint_train_images_20170902/')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/aic_val.json',
        data_prefix=dict(img='ai_challenger_keypoint_validation_20170911/'
                         'keypoint_validation_images_20170911/')))
test_dataloader = val_dataloader
# the keypoint sigmas of OKS come from the dataset's metainfo; AIC's
# annotations have no 'area' (mmpose's AIC configs set use_area=False too)
val_evaluator = dict(
    ann_file=data_root + 'annotations/aic_val.json',
    use_area=False,
    prefix='aic')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='aic/AP', rule='greater'))
