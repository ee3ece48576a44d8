"""The command-line tools, run as a user runs them (subprocesses, CPU).

One quick-start smoke run (tools/quickstart.py --quick) is shared: its
checkpoint is evaluated again by tools/test.py and ``mim test`` and drawn by
the inferencer demo.
"""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest

from conftest import COCO_MINI, REPO_ROOT, load_tool, openvino_crashes_here

CPU_CONFIG = osp.join(REPO_ROOT, 'configs', 'querypose', 'coco',
                      'querypose_r18-tiny-cpu_1xb2-1.2k_coco-mini-256x427.py')
BIN = osp.dirname(sys.executable)
# two images with 5 persons: the loss halves well within 60 iterations
QUICK_IMAGES = ['790', '211325']
QUICK_ITERS = 60
# The quick start's own AP and another tool's, from the same checkpoint in
# another process: kernels may round otherwise (another batch), which can
# move a person across an OKS threshold of the 2-image set; a wrong
# evaluation path (coordinates, scores, metric) moves AP by far more.
AP_OTHER_PROCESS = 0.01


def run(cmd, cwd=REPO_ROOT, timeout=600, env=None):
    full_env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    full_env['PATH'] = BIN + os.pathsep + full_env.get('PATH', '')
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout[-6000:]}'
    return proc.stdout


def write_clip(path: str, frames) -> str:
    """A 5 fps mp4 of the BGR ``frames``, each resized to 320x240."""
    import cv2
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             (320, 240))
    for frame in frames:
        writer.write(cv2.resize(frame, (320, 240)))
    writer.release()
    return path


def read_demo_video_outputs(out_dir, name: str = 'clip') -> list:
    """Check that the demo drew a 3-frame clip back; its per-frame
    predictions."""
    import cv2
    drawn = cv2.VideoCapture(str(out_dir / 'visualizations' / f'{name}.mp4'))
    assert int(drawn.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    with open(out_dir / 'predictions' / f'{name}.json') as f:
        frames = json.load(f)
    assert len(frames) == 3
    return frames


@pytest.fixture(scope='module')
def quickstart(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('quickstart')
    output = run([
        sys.executable, 'tools/quickstart.py', '--quick', '--iters',
        str(QUICK_ITERS), '--work-dir',
        str(work_dir), '--img-ids', *QUICK_IMAGES
    ])
    with open(work_dir / 'summary.json') as f:
        summary = json.load(f)
    return dict(work_dir=work_dir, output=output, summary=summary)


def test_quickstart_quick_loss_falls_by_half(quickstart):
    summary = quickstart['summary']
    assert summary['iterations'] == QUICK_ITERS
    assert len(summary['loss_curve']) == QUICK_ITERS
    assert summary['loss_last'] <= 0.5 * summary['loss_first'], summary[
        'loss_curve']
    ap = summary['metrics']['train_images']['coco/AP']
    assert 0.0 <= ap <= 1.0
    pictures = os.listdir(summary['pictures'])
    assert len(pictures) == len(QUICK_IMAGES)
    # mmengine's logger output the user follows
    assert re.search(r'Iter\(train\)\s+\[\s*\d+/60\]', quickstart['output'])


def _test_cmd_for_train_images(summary, work_dir):
    return [
        '--work-dir',
        str(work_dir), '--cfg-options',
        f'test_dataloader.dataset.data_root={COCO_MINI}',
        f'test_dataloader.dataset.ann_file={summary["train_ann_file"]}',
        'test_dataloader.dataset.data_prefix.img=train2017/'
    ]


def test_tools_test_reports_the_quickstart_ap(quickstart, tmp_path):
    """mmpose's flags: --out writes the metrics, --dump the predictions,
    --show-dir the pictures."""
    summary = quickstart['summary']
    metrics, dump = tmp_path / 'metrics.json', tmp_path / 'preds.pkl'
    output = run([
        sys.executable, 'tools/test.py', CPU_CONFIG, summary['checkpoint'],
        '--out',
        str(metrics), '--dump',
        str(dump), '--show-dir', 'vis'
    ] + _test_cmd_for_train_images(summary, tmp_path / 'test'))
    ap = float(re.search(r'coco/AP: (\d\.\d+)', output).group(1))
    expected = summary['metrics']['train_images']['coco/AP']
    assert ap == pytest.approx(expected, abs=AP_OTHER_PROCESS)
    with open(metrics) as f:
        assert json.load(f)['coco/AP'] == pytest.approx(ap, abs=1e-4)
    import pickle
    with open(dump, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == len(QUICK_IMAGES)
    assert predictions[0]['pred_instances']['keypoints'].shape[1:] == (17, 2)
    pictures = [
        name for _, _, names in os.walk(tmp_path / 'test') for name in names
        if name.endswith('.jpg')
    ]
    assert len(pictures) == len(QUICK_IMAGES)


def test_mim_train_and_test(quickstart, tmp_path):
    assert shutil.which('mim', path=BIN), 'openmim is not installed'
    summary = quickstart['summary']
    run([
        osp.join(BIN, 'mim'), 'train', 'mmpose', CPU_CONFIG, '--gpus', '0',
        '--work-dir',
        str(tmp_path / 'train'), '--cfg-options', 'train_cfg.max_iters=2',
        f'train_dataloader.dataset.data_root={COCO_MINI}',
        f'val_dataloader.dataset.data_root={COCO_MINI}',
        'train_dataloader.num_workers=0', 'default_hooks.logger.interval=1'
    ])
    assert (tmp_path / 'train' / 'iter_2.pth').is_file()
    output = run([
        osp.join(BIN, 'mim'), 'test', 'mmpose', CPU_CONFIG, '--gpus', '0',
        '--checkpoint', summary['checkpoint']
    ] + _test_cmd_for_train_images(summary, tmp_path / 'test'))
    ap = float(re.search(r'coco/AP: (\d\.\d+)', output).group(1))
    assert ap == pytest.approx(
        summary['metrics']['train_images']['coco/AP'], abs=AP_OTHER_PROCESS)


def test_inferencer_demo_draws_and_returns_predictions(quickstart, tmp_path):
    summary = quickstart['summary']
    image = osp.join(COCO_MINI, 'val2017', '000000000139.jpg')
    run([
        sys.executable, 'demo/querypose_demo.py', image, '--config',
        CPU_CONFIG, '--checkpoint', summary['checkpoint'], '--out-dir',
        str(tmp_path), '--max-persons', '5'
    ])
    assert (tmp_path / 'visualizations' / '000000000139.jpg').is_file()
    with open(tmp_path / 'predictions' / '000000000139.json') as f:
        people = json.load(f)
    assert 1 <= len(people) <= 5
    for person in people:
        assert len(person['keypoints']) == 17
        assert len(person['keypoint_scores']) == 17
        assert len(person['bbox'][0]) == 4


def test_onnx_export_and_onnxruntime_demo_draw_the_pytorch_poses(
        quickstart, tmp_path):
    """README's deployment commands: pytorch2onnx.py on the quick-start
    checkpoint, then the demo with ONNX Runtime gives the persons and the
    picture of the PyTorch demo."""
    import cv2
    import numpy as np
    summary = quickstart['summary']
    image = osp.join(COCO_MINI, 'val2017', '000000000139.jpg')
    onnx_file = str(tmp_path / 'querypose.onnx')
    output = run([
        sys.executable, 'tools/deployment/pytorch2onnx.py', CPU_CONFIG,
        summary['checkpoint'], '--out', onnx_file, '--dynamic'
    ])
    assert 'exported' in output and osp.isfile(onnx_file)
    output = run([
        sys.executable, 'tools/deployment/compare_backends.py', CPU_CONFIG,
        summary['checkpoint'], onnx_file, '--max-images', '3', '--out',
        str(tmp_path / 'diff.json')
    ])
    assert ('3 images, onnxruntime fp32: same persons in the same order: '
            'True') in output
    with open(tmp_path / 'diff.json') as f:
        diff = json.load(f)
    assert diff['max_keypoint_rel'] < 1e-3 and diff['max_box_rel'] < 1e-3
    people = {}
    for backend, args in (('pytorch', [
            '--config', CPU_CONFIG, '--checkpoint', summary['checkpoint']
    ]), ('onnxruntime', ['--onnx', onnx_file])):
        run([
            sys.executable, 'demo/querypose_demo.py', image, '--backend',
            backend, *args, '--out-dir',
            str(tmp_path / backend), '--pose-thr', '0.05'
        ])
        with open(tmp_path / backend / 'predictions' /
                  '000000000139.json') as f:
            people[backend] = json.load(f)
    assert len(people['onnxruntime']) == len(people['pytorch']) == 12
    for ort, pt in zip(people['onnxruntime'], people['pytorch']):
        box = np.asarray(pt['bbox'][0])
        size = max(box[2] - box[0], box[3] - box[1])
        assert abs(ort['bbox_score'] - pt['bbox_score']) < 1e-4
        assert np.abs(np.subtract(ort['bbox'][0], box)).max() < 1e-3 * size
        assert np.abs(np.subtract(ort['keypoints'],
                                  pt['keypoints'])).max() < 1e-3 * size
    drawn = [
        cv2.imread(
            str(tmp_path / backend / 'visualizations' / '000000000139.jpg'))
        for backend in ('pytorch', 'onnxruntime')
    ]
    original = cv2.imread(image)
    changed = np.abs(drawn[0].astype(int) - original).max(-1) > 40
    assert changed.mean() > 0.005  # poses were drawn
    differ = np.abs(drawn[0].astype(int) - drawn[1]).max(-1) > 40
    assert differ.mean() < 0.02 * changed.mean()
    # a video: drawn back frame by frame, one JSON for all frames
    video = write_clip(str(tmp_path / 'clip.mp4'), [original] * 3)
    output = run([
        sys.executable, 'demo/querypose_demo.py', video, '--backend',
        'onnxruntime', '--onnx', onnx_file, '--out-dir',
        str(tmp_path / 'video')
    ])
    assert '3 frame(s) done' in output
    frames = read_demo_video_outputs(tmp_path / 'video')
    assert [frame['frame_id'] for frame in frames] == [0, 1, 2]
    assert len(frames[0]['instances']) == 12
    if openvino_crashes_here():
        return  # the AVX2 check run of an AVX-512 machine (conftest)
    # OpenVINO, two frames at a time: the same persons
    run([
        sys.executable, 'demo/querypose_demo.py', video, '--backend',
        'openvino', '--onnx', onnx_file, '--batch-size', '2', '--out-dir',
        str(tmp_path / 'openvino')
    ])
    for ov_frame, ort_frame in zip(
            read_demo_video_outputs(tmp_path / 'openvino'), frames):
        for ov, ort in zip(ov_frame['instances'], ort_frame['instances']):
            box = np.asarray(ort['bbox'][0])
            size = max(box[2] - box[0], box[3] - box[1])
            assert abs(ov['bbox_score'] - ort['bbox_score']) < 1e-4
            assert np.abs(np.subtract(ov['keypoints'],
                                      ort['keypoints'])).max() < 1e-3 * size
    # the exported model's AP, as tools/test.py scores the checkpoint
    metrics = tmp_path / 'runtime_metrics.json'
    output = run([
        sys.executable, 'tools/deployment/test_runtime.py', onnx_file,
        '--backend', 'openvino', '--batch-size', '2', '--out',
        str(metrics), '--cfg-options',
        f'test_dataloader.dataset.data_root={COCO_MINI}',
        f'test_dataloader.dataset.ann_file={summary["train_ann_file"]}',
        'test_dataloader.dataset.data_prefix.img=train2017/'
    ])
    with open(metrics) as f:
        ap = json.load(f)['metrics']['coco/AP']
    expected = summary['metrics']['train_images']['coco/AP']
    assert ap == pytest.approx(expected, abs=AP_OTHER_PROCESS)


def test_runtime_evaluation_scores_each_image_against_its_own_persons():
    """tools/deployment/test_runtime.py with a runtime that answers each
    image with its ground truth: AP 1, so images, ids and sizes line up."""
    import cv2
    import numpy as np
    from mmengine.config import Config
    tool = load_tool('tools/deployment/test_runtime.py')
    cfg = Config.fromfile(CPU_CONFIG)
    cfg.test_dataloader.dataset.data_root = COCO_MINI
    truth = tool.test_dataset(cfg.copy())

    class GroundTruthRuntime:
        answered = 0

        def predict(self, images, max_per_img=None, batch_size=None):
            persons = []
            for image in images:
                info = truth.get_data_info(self.answered)
                self.answered += 1
                assert image.shape == cv2.imread(info['img_path']).shape
                annotated = [
                    i for i, n in enumerate(info['num_keypoints']) if n > 0
                ]
                bboxes = info['bbox'][annotated]
                persons.append(
                    dict(
                        keypoints=info['keypoints'][annotated],
                        keypoint_scores=np.ones((len(annotated), 17)),
                        bboxes=bboxes,
                        bbox_scores=np.ones(len(annotated))))
            return persons

    runtime = GroundTruthRuntime()
    metrics = tool.evaluate(runtime, cfg, batch_size=3)
    assert runtime.answered == len(truth) == 28
    assert metrics['coco/AP'] == pytest.approx(1.0)


def _random_checkpoint(config_name: str, tmp_path) -> tuple:
    """A COCO config of ours and a checkpoint of its model at a seeded
    random init."""
    import torch
    from mmengine.config import Config
    from mmengine.runner.checkpoint import save_checkpoint

    from mmpose.registry import MODELS
    from querypose_mm.testing import get_config_path
    config = get_config_path('querypose/coco/' + config_name)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    checkpoint = str(tmp_path / 'random.pth')
    save_checkpoint(dict(state_dict=model.state_dict()), checkpoint)
    return config, checkpoint


def test_fast_path_tool_counts_queries_and_checks_equality(tmp_path):
    """tools/analysis/fast_path.py on the light 100-query quick-start config
    (random weights, class probabilities near the 0.01 prior): score-
    threshold decoding gives the full path's persons above it."""
    config, checkpoint = _random_checkpoint(
        'querypose_r18-tiny-cpu-light-100q_1xb2-1.2k_coco-mini-256x427.py',
        tmp_path)
    output = run([
        sys.executable, 'tools/analysis/fast_path.py', config, checkpoint,
        '--quick', '--score-thr', '0.01', '--out',
        str(tmp_path / 'fast_path.json')
    ])
    assert 'same persons, same order: True' in output
    with open(tmp_path / 'fast_path.json') as f:
        summary = json.load(f)
    assert summary['light'] and summary['same_persons']
    assert summary['images'] == 2 and summary['num_queries'] == 100
    # some queries reach the threshold, not all; one box pass
    assert 0 < summary['queries_decoded_mean'] < 100
    assert summary['box_passes_mean'] == 1
    assert summary['max_keypoint_diff_px'] < 1e-3
    assert summary['max_score_diff'] < 1e-5


def _free_port() -> int:
    """A port nobody listens on now, so two test runs at once (or another
    job's rendezvous) do not collide on a fixed one."""
    import socket
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_distributed_training_two_cpu_processes_and_resume(tmp_path):
    work_dir = tmp_path / 'dist'
    common = [
        '--work-dir',
        str(work_dir), '--cfg-options',
        f'train_dataloader.dataset.data_root={COCO_MINI}',
        f'val_dataloader.dataset.data_root={COCO_MINI}',
        'train_dataloader.num_workers=0', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2', 'randomness.seed=0'
    ]
    env = dict(PYTHON=sys.executable, PORT=str(_free_port()))
    output = run(
        ['bash', 'tools/dist_train.sh', CPU_CONFIG, '2'] + common +
        ['train_cfg.max_iters=2', 'train_cfg.val_interval=100'],
        env=env)
    assert 'Distributed launcher: pytorch' in output
    assert 'Distributed training: True' in output
    assert 'GPU number: 2' in output  # mmengine's name for the world size
    assert (work_dir / 'iter_2.pth').is_file()
    output = run(
        ['bash', 'tools/dist_train.sh', CPU_CONFIG, '2', '--resume'] + common +
        ['train_cfg.max_iters=4', 'train_cfg.val_interval=100'],
        env=env)
    assert 'resumed epoch: 0, iter: 2' in output
    assert re.search(r'Iter\(train\)\s+\[4/4\]', output)
    assert not re.search(r'Iter\(train\)\s+\[1/4\]', output)
    assert (work_dir / 'iter_4.pth').is_file()


def _other_train_regimes():
    """The head's training regimes but the small config's own (which the
    test above trains)."""
    from mmengine.config import Config

    from querypose_mm.models.utils import TRAIN_REGIMES
    own = Config.fromfile(CPU_CONFIG).model.head.train_regime
    return [regime for regime in TRAIN_REGIMES if regime != own]


@pytest.mark.parametrize('regime', _other_train_regimes())
def test_distributed_training_two_cpu_processes_other_regimes(
        regime, tmp_path):
    output = run([
        'bash', 'tools/dist_train.sh', CPU_CONFIG, '2', '--work-dir',
        str(tmp_path), '--no-validate', '--cfg-options',
        f'train_dataloader.dataset.data_root={COCO_MINI}',
        'train_dataloader.num_workers=0', 'default_hooks.logger.interval=1',
        f'model.head.train_regime={regime}', 'train_cfg.max_iters=2',
        'default_hooks.checkpoint.interval=2', 'randomness.seed=0'
    ],
                 env=dict(PYTHON=sys.executable, PORT=str(_free_port())))
    assert 'Distributed training: True' in output
    assert re.search(r'Iter\(train\)\s+\[2/2\]', output)
    assert (tmp_path / 'iter_2.pth').is_file()


def test_benchmark_quick_writes_table_and_breakdown(tmp_path):
    output = run([
        sys.executable, 'tools/analysis/benchmark.py', '--quick', '--models',
        'querypose-tiny@bf16', '--runs', '2', '--batch-size', '2',
        '--train-step', '--out-dir',
        str(tmp_path)
    ])
    with open(tmp_path / 'benchmark.json') as f:
        result = json.load(f)['results'][0]
    assert 'error' not in result, result
    assert 0.5 < result['params_m'] < 50
    assert result['gmacs'] > 0
    assert result['latency_ms_p90'] >= result['latency_ms_median'] > 0
    assert result['throughput_img_s'] > 0 and result['peak_mem_mb'] > 0
    # module groups by path in the model (test_benchmarking.py)
    assert {
        'backbone', 'neck', 'head.box_decoders',
        'head.keypoint_decoders.conv_stack', 'head.keypoint_decoders.spegm',
        'head.keypoint_decoders.sim'
    } <= set(result['breakdown_ms'])
    # the training criterion does not run in a test step
    assert 'head.criterion' not in result['breakdown_ms']
    # the profiler's count of dtype/layout conversions in a bf16 step
    assert result['mode'] == 'bf16'
    assert result['breakdown_ms']['conversion ops per step'] > 0
    fp32, amp = result['train_step']
    assert fp32['amp'] == 'off' and fp32['batch_size'] == 2
    assert fp32['iter_s_median'] > 0 and fp32['peak_mem_mb'] > 0
    # mmengine's AmpOptimWrapper refuses the CPU: reported, not crashed
    assert amp['amp'] == 'bfloat16' and 'gpu' in amp['error']
    assert 'not supported' in output
    assert (tmp_path / 'benchmark.png').is_file()
    assert (tmp_path / 'benchmark.csv').is_file()
    assert 'querypose-tiny' in output


@pytest.mark.skipif(
    openvino_crashes_here(),
    reason='ONEDNN_MAX_CPU_ISA caps oneDNN below this CPU: OpenVINO crashes')
def test_benchmark_modes_and_interleaved_rounds(tmp_path):
    """NAME@MODE rows (ONNX Runtime and OpenVINO from one export), measured
    twice, interleaved (the ratio arithmetic: test_benchmarking.py)."""
    entries = ['querypose-tiny@onnxruntime', 'querypose-tiny@openvino-bf16']
    output = run([
        sys.executable, 'tools/analysis/benchmark.py', '--quick', '--models',
        *entries, '--runs', '1', '--warmup', '0', '--rounds', '2',
        '--batch-size', '2', '--out-dir',
        str(tmp_path)
    ])
    order = re.findall(r'measuring (\S+) \(round (\d)/2\)', output)
    assert order == [(entry, r) for r in '12' for entry in entries]
    assert output.count('exporting querypose-tiny to ONNX') == 1
    with open(tmp_path / 'benchmark.json') as f:
        data = json.load(f)
    ort, openvino = data['results']
    assert data['meta']['rounds'] == 2
    for row in data['results']:
        assert 'error' not in row, row
        assert len(row['rounds_latency_ms']) == 2
        assert row['latency_ms_median'] == min(row['rounds_latency_ms'])
        assert row['throughput_img_s'] > 0 and row['throughput_batch'] == 2
    assert ort['mode'] == 'onnxruntime' and ort['onnxruntime']
    assert openvino['mode'] == 'openvino-bf16' and openvino['openvino']
    assert ort['gmacs'] == openvino['gmacs'] > 0 and ort['params_m'] > 0
    # torch.utils.benchmark.Compare's table of the rounds
    assert re.search(
        r'querypose-tiny@openvino-bf16\s+\|\s+[\d.]+\s+\|\s+[\d.]+', output)


def test_benchmark_refuses_unknown_models_and_modes(capsys):
    """The command line's own error (exit 2, the reason), before anything
    is built."""
    benchmark = load_tool('tools/analysis/benchmark.py')
    for models, message in ((['querypose-r50@fp8'], "unknown mode 'fp8'"),
                            (['edpose-r50@onnxruntime'], "is QueryPose's"),
                            (['edpose-r50', '--mode',
                              'bf16'], "is QueryPose's")):
        with pytest.raises(SystemExit) as exited:
            benchmark.parse_args(['--models', *models])
        assert exited.value.code == 2
        assert message in capsys.readouterr().err


@pytest.mark.parametrize('peer', ['edpose-r50', 'dekr-hrnet-w32'])
def test_benchmark_builds_and_runs_mmposes_peers(peer):
    """ED-Pose's new-style config without its missing mmpose.configs base,
    DEKR at its padding; one real image through each test_step."""
    import torch
    from benchmarking import as_batch, build_model, load_inputs
    model, _ = build_model(peer, 'cpu')
    assert type(model).__name__ == 'BottomupPoseEstimator'
    # ED-Pose selects 900 queries among the encoder tokens: not below ~256
    samples = load_inputs(short_side=256, max_size=427, count=1)
    with torch.no_grad():
        out = model.test_step(as_batch(samples))[0]
    keypoints = out.pred_instances.keypoints
    assert keypoints.ndim == 3 and keypoints.shape[1:] == (17, 2)


MMPOSE_TOOLS = osp.join(
    osp.dirname(__import__('mmpose').__file__), '.mim', 'tools')


def test_quickstart_and_plot_curves_draw_the_loss_curve(quickstart, tmp_path):
    assert osp.isfile(quickstart['summary']['loss_curve_png'])
    out = tmp_path / 'curves.png'
    output = run([
        sys.executable, 'tools/analysis/plot_curves.py',
        str(quickstart['work_dir']), '--keys', 'loss', 's1.loss_kpt', '--out',
        str(out)
    ])
    assert out.is_file() and out.stat().st_size > 5000
    assert 'loss, s1.loss_kpt from' in output


def test_publish_model_wrapper_strips_the_optimizer(quickstart, tmp_path):
    import torch
    run([
        sys.executable, 'tools/misc/publish_model.py',
        quickstart['summary']['checkpoint'],
        str(tmp_path / 'published.pth')
    ])
    published = [p for p in os.listdir(tmp_path) if p.startswith('published-')]
    assert len(published) == 1  # named with its SHA-256 prefix, as mmpose
    checkpoint = torch.load(tmp_path / published[0])
    assert sorted(checkpoint) == ['meta', 'state_dict']


def test_mmposes_get_flops_and_browse_dataset_run_on_our_config(tmp_path):
    output = run([
        sys.executable,
        osp.join(MMPOSE_TOOLS, 'analysis_tools', 'get_flops.py'), CPU_CONFIG,
        '--input-shape', '256', '320'
    ])
    assert re.search(r'Flops: [\d.]+G', output)
    assert 'Params: 4.865M' in output
    run([
        sys.executable,
        osp.join(MMPOSE_TOOLS, 'misc', 'browse_dataset.py'), CPU_CONFIG,
        '--output-dir',
        str(tmp_path), '--not-show', '--phase', 'train'
    ])
    assert len(os.listdir(tmp_path)) == 9  # the quick start's 9 images


def test_demo_on_a_video_writes_the_drawn_video_with_progress(
        quickstart, tmp_path):
    import cv2
    video = write_clip(
        str(tmp_path / 'clip.mp4'), [
            cv2.imread(osp.join(COCO_MINI, 'val2017', name))
            for name in ('000000000139.jpg', '000000034417.jpg',
                         '000000109313.jpg')
        ])
    output = run([
        sys.executable, 'demo/querypose_demo.py', video, '--config',
        CPU_CONFIG, '--checkpoint', quickstart['summary']['checkpoint'],
        '--out-dir',
        str(tmp_path / 'out'), '--pose-thr', '0.2', '--precision', 'bf16',
        '--batch-size', '2'
    ])
    assert re.search(r'3/3, [\d.]+ task/s', output)  # mmengine's bar, fps
    assert '3 frame(s) done' in output
    read_demo_video_outputs(tmp_path / 'out')


def test_demo_folder_outputs_never_collide(quickstart, tmp_path):
    """Inputs that share a stem (p.jpg, p.png) or a name in other
    sub-folders (a/img.jpg, b/img.jpg) each get their picture and JSON; a
    file that is no image is passed over."""
    import cv2
    import numpy as np
    images = tmp_path / 'images'
    sources = {
        'p.jpg': '000000000139.jpg',
        'p.png': '000000034417.jpg',
        'a/img.jpg': '000000109313.jpg',
        'b/img.jpg': '000000000139.jpg'
    }
    for name, source in sources.items():
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        picture = cv2.imread(osp.join(COCO_MINI, 'val2017', source))
        cv2.imwrite(str(images / name), cv2.resize(picture, (320, 240)))
    (images / 'README').write_text('not an image\n')
    out = tmp_path / 'out'
    output = run([
        sys.executable, 'demo/querypose_demo.py',
        str(images), '--config', CPU_CONFIG, '--checkpoint',
        quickstart['summary']['checkpoint'], '--out-dir',
        str(out)
    ])
    assert '4 frame(s) done' in output
    drawn = sorted(
        osp.relpath(osp.join(root, name), out / 'visualizations')
        for root, _, names in os.walk(out / 'visualizations')
        for name in names)
    assert drawn == sorted(sources)
    predictions = {
        name: json.loads((out / 'predictions' / name).read_text())
        for name in ('p.jpg.json', 'p.png.json', 'a/img.json', 'b/img.json')
    }
    assert predictions['a/img.json'] != predictions['b/img.json']
    assert predictions['p.jpg.json'] == predictions['b/img.json']
    # three images at a time (one input shape): each its persons alone
    run([
        sys.executable, 'demo/querypose_demo.py',
        str(images), '--config', CPU_CONFIG, '--checkpoint',
        quickstart['summary']['checkpoint'], '--out-dir',
        str(tmp_path / 'batched'), '--batch-size', '3'
    ])
    for name, persons in predictions.items():
        batched = json.loads(
            (tmp_path / 'batched' / 'predictions' / name).read_text())
        assert len(batched) == len(persons) > 0
        for got, expected in zip(batched, persons):
            assert got['bbox_score'] == pytest.approx(
                expected['bbox_score'], abs=1e-4)
            assert np.allclose(
                got['keypoints'], expected['keypoints'], atol=1e-2)
    assert not [
        name for _, _, names in os.walk(out)
        for name in names if '.partial' in name
    ]


@pytest.mark.parametrize('source', ['unreadable video', 'missing camera'])
def test_demo_says_when_a_video_or_camera_gives_no_frame(
        quickstart, tmp_path, source):
    """A text file named .mp4 is an error naming it (not rc 0 and nothing);
    'webcam:ID' reaches the camera (no 'does not exist' error) and, with
    no camera here, says it could not be opened."""
    if source == 'missing camera':
        given, message = 'webcam:7', 'webcam:7: the camera could not be opened'
    else:
        video = tmp_path / 'clip.mp4'
        video.write_text('not a video\n')
        given, message = str(video), f'{video}: no frame could be read'
    proc = subprocess.run([
        sys.executable, 'demo/querypose_demo.py', given, '--config',
        CPU_CONFIG, '--checkpoint', quickstart['summary']['checkpoint'],
        '--out-dir',
        str(tmp_path / 'out')
    ],
                          cwd=REPO_ROOT,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert message in proc.stdout


def test_tensorboard_is_a_one_line_config_switch(tmp_path):
    config = tmp_path / 'with_tensorboard.py'
    config.write_text(
        f'_base_ = [{CPU_CONFIG!r}]\n'
        # the line the README gives
        "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), "
        "dict(type='TensorboardVisBackend')])\n")
    run([
        sys.executable, 'tools/train.py',
        str(config), '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', 'train_cfg.max_iters=2',
        'default_hooks.logger.interval=1',
        f'train_dataloader.dataset.data_root={COCO_MINI}',
        f'val_dataloader.dataset.data_root={COCO_MINI}',
        f'test_dataloader.dataset.data_root={COCO_MINI}'
    ])
    events = [
        name for _, _, names in os.walk(tmp_path / 'work') for name in names
        if name.startswith('events.out.tfevents')
    ]
    assert len(events) == 1


def test_demo_decodes_only_the_drawn_persons_where_exact(tmp_path):
    """The light model: the demo's JSON holds the persons the full decoding
    scores at or above --pose-thr, the same ones; --all-persons keeps
    every query."""
    import numpy as np
    config, checkpoint = _random_checkpoint(
        'querypose_r18-tiny-cpu-light_1xb2-1.2k_coco-mini-256x427.py',
        tmp_path)
    image = osp.join(COCO_MINI, 'val2017', '000000000139.jpg')

    def demo(name, *options):
        run([
            sys.executable, 'demo/querypose_demo.py', image, '--config',
            config, '--checkpoint', checkpoint, '--out-dir',
            str(tmp_path / name), *options
        ])
        with open(tmp_path / name / 'predictions' / '000000000139.json') as f:
            return json.load(f)

    everyone = demo('all', '--all-persons')
    assert len(everyone) == 12
    scores = sorted((p['bbox_score'] for p in everyone), reverse=True)
    thr = (scores[4] + scores[5]) / 2  # 5 persons above
    kept = demo('thr', '--pose-thr', str(thr))
    expected = [p for p in everyone if p['bbox_score'] >= thr]
    assert len(kept) == len(expected) == 5
    for got, want in zip(kept, expected):
        assert abs(got['bbox_score'] - want['bbox_score']) < 1e-6
        np.testing.assert_allclose(
            got['keypoints'], want['keypoints'], atol=1e-3)
