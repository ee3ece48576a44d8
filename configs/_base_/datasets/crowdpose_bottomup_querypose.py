_base_ = ['./coco_bottomup_querypose.py']

# CrowdPose: trained on train+val, evaluated on test (paper §4.3).
dataset_type = 'CheckedCrowdPoseDataset'
data_root = 'data/crowdpose/'
train_ann_file = 'annotations/mmpose_crowdpose_trainval.json'
val_ann_file = 'annotations/mmpose_crowdpose_test.json'
train_img_prefix = 'images/'
val_img_prefix = 'images/'

# CrowdPose's 14 keypoints (l/r shoulder 0,1, l/r elbow 2,3, l/r wrist 4,5,
# l/r hip 6,7, l/r knee 8,9, l/r ankle 10,11, head top 12, neck 13) in the
# spirit of the paper's 7 rigid parts (models/utils/part_groups.py
# CROWDPOSE_PARTS_7); neither the paper nor the official code gives a
# CrowdPose split. A config sets them as model.head's.
num_keypoints = 14
part_groups = [[12, 13], [0, 1], [2, 4], [3, 5], [6, 7], [8, 10], [9, 11]]

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
