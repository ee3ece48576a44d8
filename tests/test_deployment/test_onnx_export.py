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
                                     build_runtime, check_config_fits,
                                     export_onnx, onnx_export, runtimes,
                                     short_side_resize_shape, verify_export)
from querypose_mm.models.task_modules.query_selection import top_poses
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


def assert_top_poses(got, expected) -> None:
    """Batched (B, k, ...) persons in OUTPUT_NAMES order equal
    :func:`top_poses`'s per image exactly, in the same order."""
    assert len(got[0]) == len(expected)
    for i, pred in enumerate(expected):
        for name, value in zip(runtimes.OUTPUT_NAMES, got):
            value = np.asarray(value[i])
            assert value.shape == pred.get(name).shape, name
            np.testing.assert_array_equal(value, pred.get(name), name)


def test_onnx_graph_module_equals_the_pytorch_head(model_and_cfg):
    """The export-time changes (torchvision RoIAlign, static multi-level
    RoI extraction) leave every output bit-identical: the graph's persons
    are ``top_poses`` of the PyTorch head, in its order."""
    model, _ = model_and_cfg
    torch.manual_seed(1)
    inputs = torch.randn(2, 3, 256, 384)
    img_whwh = torch.tensor([[384., 256, 384, 256], [350, 230, 350, 230]])
    graph = QueryPoseOnnxModel(model)
    assert graph.max_per_img == 12
    with torch.no_grad():
        last = model.head.run_stages(
            model.neck(model.backbone(inputs)), img_whwh)[-1]
        got = graph(inputs, img_whwh)
        fewer = graph(inputs, img_whwh, 5)
    # the RoIs of this input fall on more than one FPN level
    levels = model.head.box_roi_extractor.map_roi_levels(
        torch.cat(
            [torch.zeros(24, 1), last.boxes.reshape(-1, 4)], 1), 4)
    assert len(levels.unique()) > 1
    assert_top_poses(got, top_poses(last, 17, 12))
    assert_top_poses(fewer, top_poses(last, 17, 5))
    assert (got[3][:, :-1] >= got[3][:, 1:]).all()  # best first
    # the model given is left as it was
    assert not model.head.box_roi_extractor.roi_layers[0].use_torchvision


def test_tensor_mode_is_the_graph_of_the_whole_padded_input(model_and_cfg):
    """mmpose's ``tensor`` mode is the head's forward, which the graph
    runs: every query ranked, the padded input taken as the image."""
    model, _ = model_and_cfg
    inputs = torch.randn(
        1, 3, 256, 384, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = model(inputs, None, mode='tensor')
        last = model.head.run_stages(
            model.neck(model.backbone(inputs)),
            torch.tensor([[384., 256, 384, 256]]))[-1]
    assert_top_poses(got, top_poses(last, 17, model.head.num_queries))


def test_the_exported_graph_ranks_as_top_poses(model_and_cfg, dynamic_onnx):
    """ONNX Runtime's top-k on a real image: the persons of top_poses on
    the same inputs, in the same order (float rounding apart)."""
    model, _ = model_and_cfg
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    inputs, img_whwh, _ = runtime.preprocess(cv2.imread(PORTRAIT))
    with torch.no_grad():
        last = model.head.run_stages(
            model.neck(model.backbone(torch.from_numpy(inputs))),
            torch.from_numpy(img_whwh))[-1]
    expected = top_poses(last, 17, runtime.max_per_img)
    outputs = runtime.forward(inputs, img_whwh)
    assert list(outputs) == list(runtimes.OUTPUT_NAMES)
    assert outputs['bbox_scores'].shape == (1, 12)
    assert_same_persons({
        name: value[0]
        for name, value in outputs.items()
    }, expected[0].to_dict())
    # same order: equal scores would hide a swap, distinct ones do not
    assert len(np.unique(expected[0].bbox_scores.round(4))) == 12


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
    """RandomShortSideResize and the runtime share one rule; the runtime
    resizes a real image by it."""
    from querypose_mm.datasets.transforms import RandomShortSideResize
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    short, max_size = (runtime.settings[k] for k in ('short_side', 'max_size'))
    resize = RandomShortSideResize(scales=short, max_size=max_size)
    for height in (1, 31, 240, 426, 480, 641, 1999):
        for width in (1, 17, 320, 640, 853, 3000):
            assert short_side_resize_shape(height, width, short,
                                           max_size) == resize.target_size(
                                               height, width, short)
    # short side 256, long side at most 427; or the long side 427
    assert short_side_resize_shape(426, 640, 256, 427) == (256, 385)
    assert short_side_resize_shape(100, 1000, 256, 427) == (43, 427)
    # shrunk further into a static input
    assert short_side_resize_shape(426, 640, 256, 427,
                                   (256, 384)) == (256, 384)
    _, img_whwh, _ = runtime.preprocess(cv2.imread(PORTRAIT))  # 480x640
    assert img_whwh.tolist() == [[256, 341, 256, 341]]


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
    assert not np.allclose(batch['bboxes'][1], batch['bboxes'][0])


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
    with pytest.raises(ValueError, match="no bf16 support.*precision='fp32'"):
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
    with pytest.raises(ValueError, match='batch_size must be >= 1'):
        runtime(images, batch_size=0)


def test_static_export_takes_any_batch_size(static_onnx):
    runtime = QueryPoseOnnxRuntime(static_onnx)
    assert runtime.session.get_inputs()[0].shape == ['batch', 3, 256, 448]


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


def test_runtime_keeps_fewer_persons_than_the_graph_not_more(
        dynamic_onnx, monkeypatch):
    """Not 'every person' (0 was falsy) nor all but the last 3 (-3); fewer
    are the first of the graph's, more than it keeps is refused."""
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    image = cv2.imread(IMAGE)
    for count in (0, -3, 1.5):
        with pytest.raises(ValueError, match='max_per_img must be a positive'):
            runtime(image, max_per_img=count)
    every = runtime(image)
    two = runtime(image, max_per_img=2)
    for name, value in two.items():
        np.testing.assert_array_equal(value, every[name][:2])
    # at most the query count, as the PyTorch head
    assert len(runtime(image, max_per_img=100)['bboxes']) == 12
    # a graph exported with max_per_img=5
    monkeypatch.setattr(runtime, 'max_per_img', 5)
    with pytest.raises(
            ValueError,
            match='max_per_img=8: the exported graph keeps the top 5 persons;'
            ' export again with --cfg-options model.test_cfg.max_per_img=8'):
        runtime([image], max_per_img=8)


def test_the_graph_keeps_the_configured_count(model_and_cfg):
    model, _ = model_and_cfg
    fewer = copy.deepcopy(model)
    fewer.test_cfg = dict(max_per_img=5)
    inputs = torch.zeros(1, 3, 64, 96)
    img_whwh = torch.tensor([[96., 64, 96, 64]])
    with torch.no_grad():
        persons = QueryPoseOnnxModel(fewer)(inputs, img_whwh)
    assert [tuple(p.shape) for p in persons] == [(1, 5, 17, 2), (1, 5, 17),
                                                 (1, 5, 4), (1, 5)]
    fewer.test_cfg = dict(max_per_img=100)  # at most the query count
    assert QueryPoseOnnxModel(fewer).max_per_img == 12
    # a model that allows score_thr (box-only test flow): not in the graph
    fewer.head.instance_query_flows['test'] = 'box_only'
    fewer.test_cfg = dict(score_thr=0.3)
    with pytest.raises(ValueError, match='score_thr=0.3 is not in the'):
        QueryPoseOnnxModel(fewer)


def test_a_file_of_the_former_per_query_graph_is_refused(
        dynamic_onnx, tmp_path):
    import json

    import onnx
    proto = onnx.load(dynamic_onnx)
    entry = next(e for e in proto.metadata_props
                 if e.key == runtimes.METADATA_KEY)
    settings = json.loads(entry.value)
    del settings['outputs']  # as every export before the top-k graph
    entry.value = json.dumps(settings)
    former = str(tmp_path / 'former.onnx')
    onnx.save(proto, former)
    with pytest.raises(
            ValueError,
            match='exported by an earlier version.*export it again with '
            'tools/deployment/pytorch2onnx.py'):
        QueryPoseOnnxRuntime(former)


def test_the_config_of_an_export_is_its_own_or_a_fitting_one(
        dynamic_onnx, tmp_path):
    """runtime_config (the demo's and test_runtime.py's): the config stored
    in the file, a --config that fits, or a clear error for a file that
    stores none."""
    import onnx

    from querypose_mm.deployment import runtime_config
    stored = runtime_config(QueryPoseOnnxRuntime(dynamic_onnx), dynamic_onnx)
    assert stored.model.head.num_keypoints == 17
    given = runtime_config(
        QueryPoseOnnxRuntime(dynamic_onnx), dynamic_onnx,
        get_config_path(QUICKSTART_CONFIG))
    assert given.model.head.num_queries == stored.model.head.num_queries
    proto = onnx.load(dynamic_onnx)
    kept = [e for e in proto.metadata_props if e.key != runtimes.CONFIG_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    bare = str(tmp_path / 'bare.onnx')
    onnx.save(proto, bare)
    with pytest.raises(
            ValueError, match='bare.onnx stores no config: give '
            '--config'):
        runtime_config(QueryPoseOnnxRuntime(bare), bare)


def test_runtime_precision_is_fp32_or_bf16_and_reads_f32(dynamic_onnx):
    from querypose_mm.models.utils import PRECISIONS

    # the torch-free file's copy of the project's vocabulary
    assert runtimes.PRECISIONS == PRECISIONS
    with pytest.deprecated_call(match="'f32' is now called 'fp32'"):
        assert runtimes.checked_runtime_precision('f32') == 'fp32'
    with pytest.deprecated_call(match="'f32' is now called 'fp32'"):
        runtime = build_runtime(dynamic_onnx, 'onnxruntime', 'f32')
    assert isinstance(runtime, QueryPoseOnnxRuntime)
    with pytest.raises(ValueError, match='precision must be one of'):
        build_runtime(dynamic_onnx, 'onnxruntime', 'fp16')


def test_runtimes_py_runs_without_torch_or_the_package(dynamic_onnx, tmp_path):
    """The file copied next to the .onnx file: numpy, OpenCV and the
    runtime only."""
    import shutil
    import subprocess
    import sys
    shutil.copy(runtimes.__file__, tmp_path / 'runtimes.py')
    code = (
        'import sys, cv2\n'
        'sys.modules["torch"] = None  # importing torch would fail\n'
        'from runtimes import QueryPoseOnnxRuntime\n'
        f'persons = QueryPoseOnnxRuntime({dynamic_onnx!r})'
        f'(cv2.imread({IMAGE!r}))\n'
        'assert not any(m.startswith(("querypose_mm", "mmpose", "mmengine"))'
        ' for m in sys.modules)\n'
        'print(len(persons["bboxes"]), persons["bbox_scores"][0])\n')
    out = subprocess.run([sys.executable, '-c', code],
                         cwd=tmp_path,
                         capture_output=True,
                         text=True,
                         check=True).stdout.split()
    assert out[0] == '12'
    expected = QueryPoseOnnxRuntime(dynamic_onnx)(cv2.imread(IMAGE))
    assert float(out[1]) == pytest.approx(expected['bbox_scores'][0])


def test_a_config_of_another_model_is_refused_beside_the_onnx_file(
        dynamic_onnx):
    runtime = QueryPoseOnnxRuntime(dynamic_onnx)
    cfg = Config.fromfile(get_config_path(QUICKSTART_CONFIG))
    check_config_fits(runtime, cfg.model, '--config q.py')
    cfg.model.head.num_keypoints = 14
    with pytest.raises(
            ValueError,
            match=r'--config q.py has model.head.num_keypoints=14, the '
            'exported model 17'):
        check_config_fits(runtime, cfg.model, '--config q.py')


def test_verification_allows_near_tied_persons_to_swap_ranks():
    from querypose_mm.deployment.verification import person_differences
    rng = torch.Generator().manual_seed(0)
    boxes = torch.rand(1, 4, 4, generator=rng) * 50
    boxes[..., 2:] += 100
    ranked = (torch.rand(1, 4, 17, 2, generator=rng) * 100,
              torch.rand(1, 4, 17, generator=rng), boxes,
              torch.tensor([[0.9, 0.5, 0.5 - 1e-4, 0.1]]))
    # ranks 1 and 2 swapped, the last one left out: a match
    swapped = [value[:, [0, 2, 1]] for value in ranked]
    errors = person_differences(swapped, ranked, 1e-2)
    assert max(errors.values()) == 0
    # another person at a score of its own: a mismatch
    swapped[2] = swapped[2].clone()
    swapped[2][0, 1] += 30
    assert person_differences(swapped, ranked, 1e-2)['bboxes'] > 0.1
