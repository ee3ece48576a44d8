_base_ = ['./coco_bottomup_querypose.py']

# CrowdPose: trained on train+val, evaluated on test (paper §4.3).
dataset_type = 'CheckedCrowdPoseDataset'
data_root = 'data/crowdpose/'
train_ann_file = 'annotations/mmpose_crowdpose_trainval.json'
val_ann_file = 'annotations/mmpose_crowdpose_test.json'
train_img_prefix = 'images/'
val_img_prefix = 'images/'

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=train_ann_file,
        data_prefix=dict(img=train_img_prefix)))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=val_ann_file,
        data_prefix=dict(img=val_img_prefix)))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + val_ann_file,
    score_mode='bbox',
    nms_mode='none',
    iou_type='keypoints_crowd',
    use_area=False,
    prefix='crowdpose')
test_evaluator = val_evaluator
