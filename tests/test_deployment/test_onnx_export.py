"""ONNX export of the quick-start model and its inference in ONNX Runtime
and OpenVINO, compared with the PyTorch model on real bundled images."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from conftest import openvino_crashes_here
from mmpose.apis.inference import dataset_meta_from_config
from querypose_mm.deployment import (RUNTIME_BACKENDS, QueryPoseOnnxModel,
                                     QueryPoseOnnxRuntime, QueryPoseOpenVINO,
                                     build_runtime, export_onnx, onnx_export,
                                     runtimes, verify_export)
from querypose_mm.testing import (QUICKSTART_CONFIG, build_quickstart_model,
                                  get_config_path)

needs_openvino = pytest.mark.skipif(
    openvino_crashes_here(),
    reason='ONEDNN_MAX_CPU_ISA caps oneDNN below this CPU: OpenVINO crashes')

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VAL_IMAGES = osp.join(REPO_ROOT, 'data', 'coco_mini', 'val2017')
IMAGE = osp.join(VAL_IMAGES, '000000000139.jpg')  # 640x426
PORTRAIT = osp.join(VAL_IMAGES, '000000109313.jpg')  # 480x640
# Relative to the person's box size: ONNX Runtime and PyTorch differ by
# float32 rounding only (measured max ~2e-5).
MAX_RELATIVE_DIFF = 1e-3


@pytest.fixture(scope='module')
def model_and_cfg():
    model = build_quickstart_model(seed=0).eval()
    cfg = Config.fromfile(get_config_path(QUICKSTART_CONFIG))
    model.cfg = cfg
    model.dataset_meta = dataset_meta_from_config(cfg, 'train')
    return model, cfg


@pytest.fixture(scope='module')
def dynamic_onnx(model_and_cfg, tmp_path_factory):
    model, cfg = model_and_cfg
    out = str(tmp_path_factory.mktemp('onnx') / 'querypose_dynamic.onnx')
    return export_onnx(model, cfg, out, dynamic=True)


@pytest.fixture(scope='module')
def static_onnx(model_and_cfg, tmp_path_factory):
    model, cfg = model_and_cfg
    out = str(tmp_path_factory.mktemp('onnx') / 'querypose_static.onnx')
    return export_onnx(model, cfg, out, input_shape=(256, 448))


def pytorch_persons(model, image: np.ndarray) -> dict:
    """The PyTorch model's persons on a BGR image, through the config's
    test pipeline and ``add_pred_to_datasample``, as mmpose's inference
    does."""
    from mmpose.apis import inference_bottomup
    sample = inference_bottomup(model, image)[0]
    pred = sample.pred_instances
    return dict(
        keypoints=pred.keypoints,
        keypoint_scores=pred.keypoint_scores,
        bboxes=pred.bboxes,
        bbox_scores=pred.bbox_scores)


def assert_same_persons(onnx: dict, torch_: dict) -> None:
    """Same persons in the same order; coordinates equal to within
    MAX_RELATIVE_DIFF of each person's box size."""
    np.testing.assert_allclose(
        onnx['bbox_scores'], torch_['bbox_scores'], rtol=0, atol=1e-4)
    np.testing.assert_allclose(
        onnx['keypoint_scores'], torch_['keypoint_scores'], rtol=0, atol=1e-4)
    boxes = torch_['bboxes']
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    box_diff = np.abs(onnx['bboxes'] - boxes).max(1) / size
    keypoint_diff = np.abs(onnx['keypoints'] - torch_['keypoints']).max(
        (1, 2)) / size
    assert box_diff.max() < MAX_RELATIVE_DIFF, box_diff.max()
    assert keypoint_diff.max() < MAX_RELATIVE_DIFF, keypoint_diff.max()


def test_onnx_graph_module_equals_the_pytorch_head(model_and_cfg):
    """The export-time changes (torchvision RoIAlign, static multi-level
    RoI extraction) leave every output bit-identical."""
    model, _ = model_and_cfg
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 256, 384)
    img_whwh = torch.tensor([[384., 256, 384, 256], [350, 230, 350, 230]])
    with torch.no_grad():
        last = model.head.run_stages(
            model.neck(model.backbone(inputs)), img_whwh)[-1]
        cls_logits, boxes, _, sigma_logits = QueryPoseOnnxModel(model)(
            inputs, img_whwh)
    # the RoIs of this input fall on all four FPN levels
    levels = model.head.box_roi_extractor.map_roi_levels(
        torch.cat(
            [torch.zeros(24, 1), boxes.reshape(-1, 4)], 1), 4)
    assert len(levels.unique()) > 1
    assert torch.equal(cls_logits, last.cls_scores[..., 0])
    assert torch.equal(boxes, last.boxes)
    assert torch.equal(sigma_logits.flatten(0, 1), last.sigma_logits)
    # the model given is left as it was
    assert not model.head.box_roi_extractor.roi_layers[0].use_torchvision


def test_onnxruntime_gives_the_pytorch_persons_on_a_real_image(
        model_and_cfg, dynamic_onnx):
    model, _ = model_and_cfg
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    image = cv2.imread(IMAGE)
    onnx = runtime(image)
    torch_ = pytorch_persons(model, image)
    assert len(onnx['bboxes']) == 12  # max_per_img of the quick start
    assert_same_persons(onnx, torch_)
    inputs, img_whwh, _ = runtime.preprocess(image)
    assert inputs.shape == (1, 3, 256, 416)  # 256x385 padded to 32
    assert img_whwh.tolist() == [[385, 256, 385, 256]]


def test_runtime_resizes_as_the_test_pipeline(dynamic_onnx):
    """The runtime repeats RandomShortSideResize's rule without mmpose."""
    from querypose_mm.datasets.transforms import RandomShortSideResize
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    resize = RandomShortSideResize(
        scales=runtime.settings['short_side'],
        max_size=runtime.settings['max_size'])
    for height in (1, 31, 240, 426, 480, 641, 1999):
        for width in (1, 17, 320, 640, 853, 3000):
            assert runtime.resize_shape(height, width) == resize.target_size(
                height, width, runtime.settings['short_side'])


def test_dynamic_export_runs_two_image_sizes_and_a_batch(
        model_and_cfg, dynamic_onnx):
    model, _ = model_and_cfg
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    portrait = cv2.imread(PORTRAIT)
    landscape = cv2.imread(IMAGE)
    shapes = []
    for image in (portrait, landscape):
        shapes.append(runtime.preprocess(image)[0].shape)
        assert_same_persons(runtime(image), pytorch_persons(model, image))
    assert shapes[0] != shapes[1]
    # a batch of two equals the images one by one
    inputs, img_whwh, _ = runtime.preprocess(landscape)
    batch = runtime.forward(
        np.concatenate([inputs, inputs[:, :, :, ::-1].copy()]),
        np.concatenate([img_whwh, img_whwh - 20]))
    single = runtime.forward(inputs, img_whwh)
    for name, value in single.items():
        np.testing.assert_allclose(batch[name][:1], value, atol=1e-4)
    assert not np.allclose(batch['boxes'][1], batch['boxes'][0])


def test_static_export_fits_any_image_into_its_input_shape(
        model_and_cfg, tmp_path):
    model, cfg = model_and_cfg
    onnx_file = export_onnx(
        model, cfg, str(tmp_path / 'static.onnx'), input_shape=(256, 384))
    runtime = QueryPoseOnnxRuntime(onnx_file)
    image = cv2.imread(IMAGE)
    # 640x426 resizes to 385x256, one column too wide: shrunk to fit
    inputs, img_whwh, scale = runtime.preprocess(image)
    assert inputs.shape == (1, 3, 256, 384)
    assert img_whwh.tolist() == [[384, 256, 384, 256]]
    portrait = cv2.imread(PORTRAIT)
    assert runtime.preprocess(portrait)[0].shape == (1, 3, 256, 384)
    persons = runtime(portrait)
    assert np.isfinite(persons['keypoints']).all()


def test_unsupported_models_and_configs_fail_clearly(model_and_cfg, tmp_path):
    model, cfg = model_and_cfg
    max_pool = build_quickstart_model(
        pose_roi_extractor=dict(roi_layer=dict(pool_mode='max')))
    with pytest.raises(ValueError, match="pool_mode='max'"):
        export_onnx(max_pool, cfg, str(tmp_path / 'a.onnx'))

    class NotQueryPose(torch.nn.Module):
        head = torch.nn.Linear(1, 1)

    with pytest.raises(ValueError, match='only QueryPose models'):
        export_onnx(NotQueryPose(), cfg, str(tmp_path / 'b.onnx'))

    multi_scale = copy.deepcopy(cfg)
    multi_scale.test_dataloader.dataset.pipeline[1]['scales'] = [256, 320]
    with pytest.raises(ValueError, match='one scale'):
        export_onnx(model, multi_scale, str(tmp_path / 'c.onnx'))
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_export_is_verified_and_a_mismatch_writes_nothing(
        model_and_cfg, tmp_path, monkeypatch):
    model, cfg = model_and_cfg
    onnx_file = export_onnx(model, cfg, str(tmp_path / 'a.onnx'))
    # the file against its own model: float rounding only
    errors = verify_export(QueryPoseOnnxModel(model), onnx_file, [(256, 448)])
    assert max(errors.values()) < 1e-3
    # against other weights: refused, saying what to do
    other = QueryPoseOnnxModel(build_quickstart_model(seed=1).eval())
    with pytest.raises(ValueError, match='fixed --input-shape'):
        verify_export(other, onnx_file, [(256, 448)])

    def disagree(*args):
        raise ValueError('disagree')

    monkeypatch.setattr(onnx_export, 'verify_export', disagree)
    with pytest.raises(ValueError, match='disagree'):
        export_onnx(model, cfg, str(tmp_path / 'b.onnx'), dynamic=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.onnx']


def test_runtime_rejects_bad_files_and_images(dynamic_onnx, tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        QueryPoseOnnxRuntime(str(tmp_path / 'missing.onnx'))
    plain = str(tmp_path / 'plain.onnx')
    torch.onnx.export(
        torch.nn.Linear(2, 2), (torch.zeros(1, 2), ), plain, dynamo=False)
    with pytest.raises(ValueError, match='pytorch2onnx.py'):
        QueryPoseOnnxRuntime(plain)
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    with pytest.raises(ValueError, match=r'shape \(h, w, 3\)'):
        runtime(np.zeros((10, 10), np.uint8))


@needs_openvino
def test_openvino_gives_the_pytorch_persons_on_a_real_image(
        model_and_cfg, dynamic_onnx):
    model, _ = model_and_cfg
    runtime = QueryPoseOpenVINO(dynamic_onnx)
    # asked for, since OpenVINO picks bf16 by itself where the CPU has it
    assert str(runtime.compiled.get_property(
        'INFERENCE_PRECISION_HINT')) == "<Type: 'float32'>"
    assert runtime.max_batch is None
    for path in (IMAGE, PORTRAIT):
        image = cv2.imread(path)
        persons = runtime(image)
        assert len(persons['bboxes']) == 12
        assert_same_persons(persons, pytorch_persons(model, image))


@needs_openvino
def test_openvino_bf16_runs_in_bf16_where_the_cpu_has_it(
        dynamic_onnx, monkeypatch):
    import openvino
    capabilities = openvino.Core().get_property('CPU',
                                                'OPTIMIZATION_CAPABILITIES')
    if 'BF16' in capabilities:
        runtime = QueryPoseOpenVINO(dynamic_onnx, precision='bf16')
        assert 'bfloat16' in str(
            runtime.compiled.get_property('INFERENCE_PRECISION_HINT'))
        persons = runtime(cv2.imread(IMAGE))
        assert len(persons['bboxes']) == 12
        assert np.isfinite(persons['keypoints']).all()
    # a CPU without bf16 is refused, not silently run in f32
    monkeypatch.setattr(openvino.Core, 'get_property',
                        lambda self, device, name: ['FP32', 'INT8'])
    with pytest.raises(ValueError, match="no bf16 support.*precision='f32'"):
        QueryPoseOpenVINO(dynamic_onnx, precision='bf16')
    with pytest.raises(ValueError, match='precision must be one of'):
        QueryPoseOpenVINO(dynamic_onnx, precision='fp16')


@pytest.mark.parametrize('backend', [
    'onnxruntime',
    pytest.param('openvino', marks=needs_openvino),
])
def test_a_list_of_images_gives_each_the_persons_it_gets_alone(
        static_onnx, dynamic_onnx, backend, monkeypatch):
    landscape, portrait = cv2.imread(IMAGE), cv2.imread(PORTRAIT)
    # two input shapes in a dynamic export, one in a static one
    images = [
        landscape, portrait, landscape[:, ::-1].copy(),
        portrait[::2, ::2].copy()
    ]
    for onnx_file, batch_size, expected_runs in ((static_onnx, None,
                                                  1), (static_onnx, 3, 2),
                                                 (dynamic_onnx, None, 2)):
        runtime = build_runtime(onnx_file, backend)
        alone = [runtime(image) for image in images]
        runs = []
        run_graph = runtime._run
        monkeypatch.setattr(
            runtime, '_run', lambda inputs, img_whwh:
            (runs.append(len(inputs)), run_graph(inputs, img_whwh))[1])
        batched = runtime(images, batch_size=batch_size)
        assert len(runs) == expected_runs, (onnx_file, batch_size, runs)
        assert len(batched) == len(images)
        for got, expected in zip(batched, alone):
            assert_same_persons(got, expected)
    # a graph with a fixed batch (exported before batches were dynamic)
    monkeypatch.setattr(runtime, 'max_batch', 1)
    runs.clear()
    assert len(runtime(images, batch_size=3)) == 4 and runs == [1] * 4
    with pytest.raises(ValueError, match='batch_size must be >= 1'):
        runtime(images, batch_size=0)


def test_static_export_takes_any_batch_size(static_onnx):
    runtime = QueryPoseOnnxRuntime(static_onnx)
    assert runtime.max_batch is None
    assert runtime.session.get_inputs()[0].shape[1:] == [3, 256, 448]


def test_build_runtime_refuses_what_a_backend_cannot_do(dynamic_onnx):
    with pytest.raises(ValueError, match='backend must be one of'):
        build_runtime(dynamic_onnx, 'tensorrt')
    with pytest.raises(ValueError, match='needs the OpenVINO backend'):
        build_runtime(dynamic_onnx, 'onnxruntime', 'bf16')
    with pytest.raises(ValueError, match='runs on the CPU'):
        build_runtime(dynamic_onnx, 'openvino', device='cuda')
    assert set(RUNTIME_BACKENDS) == {'onnxruntime', 'openvino'}


def test_openvino_refuses_an_isa_cap_it_would_crash_on(dynamic_onnx,
                                                       monkeypatch):
    for name in ('ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA'):
        monkeypatch.delenv(name, raising=False)
    assert runtimes.onednn_isa_cap_below_cpu() is None
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX512_CORE_BF16')
    assert runtimes.onednn_isa_cap_below_cpu() is None
    monkeypatch.setattr(runtimes, 'onednn_isa_cap_below_cpu', lambda: 'AVX2')
    with pytest.raises(RuntimeError, match='ONEDNN_MAX_CPU_ISA=AVX2.*unset'):
        QueryPoseOpenVINO(dynamic_onnx)


@pytest.mark.parametrize('backend', [
    'onnxruntime',
    pytest.param('openvino', marks=needs_openvino),
])
def test_a_truncated_or_empty_onnx_file_is_named(dynamic_onnx, tmp_path,
                                                 backend):
    with open(dynamic_onnx, 'rb') as f:
        content = f.read()
    truncated = tmp_path / 'truncated.onnx'
    truncated.write_bytes(content[:len(content) // 3])
    with pytest.raises(
            ValueError,
            match=f'ONNX model {truncated} .* bytes.* cannot be read by .*'
            'export it again'):
        build_runtime(str(truncated), backend)
    empty = tmp_path / 'empty.onnx'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=f'ONNX model {empty} is empty'):
        build_runtime(str(empty), backend)


def test_runtime_refuses_person_counts_below_one(dynamic_onnx):
    """Not 'every person' (0 was falsy) nor all but the last 3 (-3)."""
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    image = cv2.imread(IMAGE)
    for count in (0, -3, 1.5):
        with pytest.raises(ValueError, match='max_per_img must be a positive'):
            runtime(image, max_per_img=count)
    assert len(runtime(image, max_per_img=2)['bboxes']) == 2


def test_a_config_of_another_model_is_refused_beside_the_onnx_file(
        dynamic_onnx):
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    cfg = Config.fromfile(get_config_path(QUICKSTART_CONFIG))
    runtimes.check_config_fits(runtime, cfg.model, '--config q.py')
    cfg.model.head.num_keypoints = 14
    with pytest.raises(
            ValueError,
            match=r'--config q.py has model.head.num_keypoints=14, the '
            'exported model 17'):
        runtimes.check_config_fits(runtime, cfg.model, '--config q.py')
