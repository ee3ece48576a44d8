from mmpose.registry import VISUALIZERS
from mmpose.structures import PoseDataSample
from mmpose.visualization import PoseLocalVisualizer


@VISUALIZERS.register_module()
class QueryPoseVisualizer(PoseLocalVisualizer):
    """mmpose's visualizer, drawing only the persons a query-based model is
    confident about.

    QueryPose keeps its top-k queries per image with no threshold (COCO AP
    wants them all), so the low-scored rest would be drawn as duplicate
    skeletons. Only persons whose pose score (``pred_instances.bbox_scores``)
    reaches ``pose_score_thr`` are drawn; the predictions themselves (and
    the JSON the Inferencer writes) keep every person.

    Args:
        name (str): The instance name (mmengine's visualizers are
            managers). Defaults to ``'visualizer'``.
        pose_score_thr (float): Minimum pose score of a drawn person.
            Defaults to 0.1: on the quick-start model every person of its
            training images scores >= 0.21 and every other query <= 0.04.
        **kwargs: :class:`PoseLocalVisualizer`'s arguments.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 pose_score_thr: float = 0.1,
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.pose_score_thr = pose_score_thr

    def add_datasample(self, name: str, image, data_sample: PoseDataSample,
                       *args, **kwargs) -> None:
        if 'pred_instances' in data_sample and \
                'bbox_scores' in data_sample.pred_instances:
            instances = data_sample.pred_instances
            data_sample = data_sample.clone()
            data_sample.pred_instances = instances[instances.bbox_scores >=
                                                   self.pose_score_thr]
        return super().add_datasample(name, image, data_sample, *args,
                                      **kwargs)
