"""Every tool's inputs checked as they enter: a count, a threshold, a path,
an output that would replace an input. The wrong answers first (a lost
file, a tool that reads its own outputs, values that would be run as
something else), then the errors that must name what to fix. The tools run
in this process (``main(argv)`` / ``parse_args``), before or with a tiny
seeded model."""
import json
import os
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
import torch

from conftest import COCO_MINI, load_tool
from querypose_mm.testing import (QUICKSTART_CONFIG, build_quickstart_model,
                                  get_config_path)
from querypose_mm.utils import CheckpointFileError

CONFIG = get_config_path(QUICKSTART_CONFIG)
CONVERTER = 'tools/model_converters/querypose_official_to_mmpose.py'


@pytest.fixture(scope='module')
def model():
    """The quick-start model at a seeded random init."""
    return build_quickstart_model().eval()


@pytest.fixture(scope='module')
def checkpoint(model, tmp_path_factory):
    """The weights of :func:`model`."""
    path = str(tmp_path_factory.mktemp('weights') / 'random.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


@pytest.fixture(scope='module')
def demo():
    return load_tool('demo/querypose_demo.py')


def _refused(parse_args, argv, capsys) -> str:
    """argparse's error for ``argv``: exit status 2, the message."""
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def _images(folder, count: int = 2, size=(160, 120)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(('000000000139.jpg', '000000034417.jpg')[:count]):
        picture = cv2.imread(osp.join(COCO_MINI, 'val2017', name))
        cv2.imwrite(str(folder / f'img{i}.jpg'), cv2.resize(picture, size))


# ----- a lost file -------------------------------------------------------


def _same_file_spellings(tmp_path, src):
    link = tmp_path / 'link.pth'
    link.symlink_to(src)
    hard = tmp_path / 'hard.pth'
    os.link(src, hard)
    return [
        str(src),
        str(tmp_path / 'sub' / '..' / src.name),
        osp.relpath(src),
        str(link),
        str(hard),
    ]


def test_converter_never_writes_over_its_own_input(tmp_path):
    (tmp_path / 'sub').mkdir()
    src = tmp_path / 'official.pth'
    torch.save(dict(model={'head.pose_head_series.0.w': torch.ones(2)}), src)
    before = src.read_bytes()
    converter = load_tool(CONVERTER)
    for dst in _same_file_spellings(tmp_path, src):
        with pytest.raises(ValueError, match='would replace its own input'):
            converter.main([str(src), dst, '--config', CONFIG])
    assert src.read_bytes() == before
    config_copy = tmp_path / 'config.py'
    config_copy.write_text(open(CONFIG).read())
    with pytest.raises(ValueError, match='is the --config'):
        converter.main(
            [str(src),
             str(config_copy), '--config',
             str(config_copy)])


@pytest.mark.parametrize('kind', ['text', 'missing', 'empty'])
def test_converter_suggests_trust_only_where_it_helps(tmp_path, kind):
    src = tmp_path / 'official.pth'
    if kind == 'text':
        src.write_text('not a checkpoint\n')
    elif kind == 'empty':
        src.write_bytes(b'')
    with pytest.raises((CheckpointFileError, FileNotFoundError)) as info:
        load_tool(CONVERTER).main([str(src), str(tmp_path / 'out.pth')])
    assert str(src) in str(info.value)
    assert '--trust' not in str(info.value)


# ----- the demo's inputs and outputs -------------------------------------


def test_demo_never_reads_its_own_outputs_and_skips_unreadable_images(
        demo, checkpoint, tmp_path, capsys):
    """--out-dir inside the input folder, run twice: the same 2 frames each
    time. A broken image in a batch of 4 is named and skipped, the others
    are done, and the run exits with status 1 at the end. --max-persons
    and --pose-thr reach the model through its checks."""
    folder = tmp_path / 'images'
    _images(folder)
    (folder / 'broken.jpg').write_text('not an image\n')
    argv = [
        str(folder), '--config', CONFIG, '--checkpoint', checkpoint,
        '--out-dir',
        str(folder / 'out'), '--batch-size', '4', '--max-persons', '2',
        '--pose-thr', '0'
    ]
    for _ in range(2):
        with pytest.raises(SystemExit) as exited:
            demo.main(argv)
        assert exited.value.code == 1
        captured = capsys.readouterr()
        assert '2 frame(s) done' in captured.out
        assert f'{folder / "broken.jpg"} is not a readable image; ' \
            'skipped' in captured.err
    drawn = sorted(os.listdir(folder / 'out' / 'visualizations'))
    assert drawn == ['img0.jpg', 'img1.jpg']
    for name in ('img0.json', 'img1.json'):
        persons = json.loads(
            (folder / 'out' / 'predictions' / name).read_text())
        assert len(persons) == 2


def test_demo_help_says_what_an_unreadable_image_does(demo, capsys):
    with pytest.raises(SystemExit):
        demo.parse_args(['--help'])
    assert 'skipped with an error line' in capsys.readouterr().out


@pytest.mark.parametrize('option', ['--pose-thr', '--kpt-thr'])
@pytest.mark.parametrize('value', ['nan', '-1', '2', 'inf', 'high'])
def test_demo_thresholds_outside_0_1_are_refused(demo, option, value, capsys):
    err = _refused(demo.parse_args, ['x.jpg', option, value], capsys)
    assert f'argument {option}: must be a score in [0, 1], got ' \
        f'{value!r}' in err


@pytest.mark.parametrize('option', ['--max-persons', '--batch-size'])
@pytest.mark.parametrize('value', ['0', '-3', '1.5'])
def test_demo_counts_below_one_are_refused(demo, option, value, capsys):
    err = _refused(demo.parse_args, ['x.jpg', option, value], capsys)
    assert f'argument {option}: must be a positive integer' in err


def test_demo_refuses_an_empty_folder_naming_it(demo, checkpoint, tmp_path):
    empty = tmp_path / 'empty'
    (empty / 'sub').mkdir(parents=True)
    (empty / 'notes.txt').write_text('no image\n')
    with pytest.raises(FileNotFoundError, match=f'{empty}.*holds no image'):
        demo.main([
            str(empty), '--config', CONFIG, '--checkpoint', checkpoint,
            '--out-dir',
            str(tmp_path / 'out')
        ])
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('kind', ['file', 'read-only', 'under a file'])
def test_demo_out_dir_that_cannot_be_written_is_refused_before_loading(
        demo, checkpoint, tmp_path, monkeypatch, kind):
    _images(tmp_path / 'images', count=1)
    if kind == 'read-only':
        out = tmp_path / 'locked' / 'out'
        (tmp_path / 'locked').mkdir()
        # root may write anywhere: the check asks os.access, as it would
        real_access = os.access
        monkeypatch.setattr(
            os, 'access', lambda path, mode: False
            if str(path) == str(tmp_path / 'locked') else real_access(
                path, mode))
        expected = PermissionError
    else:
        (tmp_path / 'taken').write_text('a file\n')
        out = tmp_path / 'taken' if kind == 'file' else \
            tmp_path / 'taken' / 'out'
        expected = NotADirectoryError
    loaded = []
    monkeypatch.setattr(demo, 'MMPoseInferencer',
                        lambda *a, **k: loaded.append(1))
    with pytest.raises(expected, match='--out-dir'):
        demo.main([
            str(tmp_path / 'images'), '--config', CONFIG, '--checkpoint',
            checkpoint, '--out-dir',
            str(out)
        ])
    assert not loaded


def test_demo_refuses_to_draw_an_image_over_itself(demo, checkpoint, tmp_path):
    _images(tmp_path / 'out' / 'visualizations', count=1)
    image = tmp_path / 'out' / 'visualizations' / 'img0.jpg'
    before = image.read_bytes()
    with pytest.raises(ValueError, match='would replace its own input'):
        demo.main([
            str(image), '--config', CONFIG, '--checkpoint', checkpoint,
            '--out-dir',
            str(tmp_path / 'out')
        ])
    assert image.read_bytes() == before


def test_demo_warns_of_bf16_under_an_isa_cap(demo, checkpoint, tmp_path,
                                             monkeypatch):
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
    args = demo.parse_args([
        str(tmp_path), '--config', CONFIG, '--checkpoint', checkpoint,
        '--precision', 'bf16', '--out-dir',
        str(tmp_path / 'out')
    ])
    with pytest.warns(UserWarning, match='ONEDNN_MAX_CPU_ISA=AVX2.*slower'):
        demo.check_args(args)
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX512_CORE_AMX')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        demo.check_args(args)


# ----- thresholds reach the model through its checks ---------------------


@pytest.mark.parametrize('settings,message', [
    (dict(score_thr=float('nan')), 'score_thr must be a pose score'),
    (dict(score_thr=-1), 'score_thr must be a pose score'),
    (dict(score_thr=2), 'score_thr must be a pose score'),
    (dict(max_per_img=0), 'max_per_img must be a positive integer'),
    (dict(max_per_img=-3), 'max_per_img must be a positive integer'),
    (dict(precision='fp16'), 'precision must be one of'),
])
def test_test_cfg_set_by_a_tool_gets_the_build_checks(model, settings,
                                                      message):
    before = dict(model.test_cfg)
    with pytest.raises(ValueError, match=f'model.test_cfg.{message}'):
        model.update_test_cfg(**settings)
    assert dict(model.test_cfg) == before


def test_test_cfg_values_that_pass_the_checks_are_set():
    # score_thr is exact (and allowed) where the box path leaves the
    # keypoint decoders out: here the box-only test flow
    model = build_quickstart_model(
        instance_query_flow=dict(train='serial', test='box_only')).eval()
    model.update_test_cfg(score_thr=0.5, max_per_img=3, precision='bf16')
    assert (model.test_cfg['score_thr'], model.test_cfg['max_per_img'],
            model.test_cfg['precision']) == (0.5, 3, 'bf16')


# ----- deployment tools ----------------------------------------------------


@pytest.mark.parametrize('shape', [['0', '0'], ['-64', '64'], ['64', 'x']])
def test_export_refuses_input_shapes_below_one(shape, capsys):
    tool = load_tool('tools/deployment/pytorch2onnx.py')
    err = _refused(tool.parse_args,
                   ['c.py', 'w.pth', '--out', 'o.onnx', '--input-shape'] +
                   shape, capsys)
    assert 'argument --input-shape: must be a positive integer' in err


@pytest.mark.parametrize('kind', ['folder', 'under a file', 'checkpoint'])
def test_export_out_is_checked_before_loading(checkpoint, tmp_path,
                                              monkeypatch, kind):
    tool = load_tool('tools/deployment/pytorch2onnx.py')
    monkeypatch.setattr(tool, 'init_model',
                        lambda *a, **k: pytest.fail('model loaded'))
    (tmp_path / 'file').write_text('x')
    out, error = {
        'folder': (tmp_path, IsADirectoryError),
        'under a file': (tmp_path / 'file' / 'q.onnx', NotADirectoryError),
        'checkpoint': (checkpoint, ValueError),
    }[kind]
    with pytest.raises(error, match='--out'):
        tool.main([CONFIG, checkpoint, '--out', str(out)])


@pytest.mark.parametrize('option,message', [
    ('model.test_cfg.score_thr=0.3', 'score_thr=0.3 is not in the exported'),
    ('model.test_cfg.precision=bf16', "precision='bf16' is PyTorch's"),
    ('model.test_cfg.max_per_img=0', 'max_per_img must be a positive'),
])
def test_export_refuses_test_cfg_the_graph_cannot_hold(checkpoint, tmp_path,
                                                       monkeypatch, option,
                                                       message):
    tool = load_tool('tools/deployment/pytorch2onnx.py')
    monkeypatch.setattr(tool, 'init_model',
                        lambda *a, **k: pytest.fail('model loaded'))
    with pytest.raises(ValueError, match=message):
        tool.main([
            CONFIG, checkpoint, '--out',
            str(tmp_path / 'q.onnx'), '--cfg-options', option
        ])
    assert not (tmp_path / 'q.onnx').exists()


@pytest.mark.parametrize('value', ['0', '-1'])
def test_compare_backends_refuses_image_counts_below_one(value, capsys):
    tool = load_tool('tools/deployment/compare_backends.py')
    err = _refused(tool.parse_args,
                   ['c.py', 'w.pth', 'm.onnx', '--max-images', value], capsys)
    assert 'argument --max-images: must be a positive integer' in err


def test_compare_backends_reports_other_person_counts():
    """An export with another max_per_img: the counts, not a numpy
    broadcast error."""
    from mmengine.structures import InstanceData
    tool = load_tool('tools/deployment/compare_backends.py')
    rng = np.random.default_rng(0)

    def persons(n):
        boxes = rng.uniform(0, 50, (n, 4))
        boxes[:, 2:] += 60
        return dict(
            keypoints=rng.uniform(0, 100, (n, 17, 2)),
            bboxes=boxes,
            bbox_scores=rng.uniform(0, 1, n))

    pytorch = InstanceData(**persons(5))
    row = tool.compare(
        {
            key: value[:3]
            for key, value in pytorch.to_dict().items()
        }, pytorch)
    assert row['persons'] == 5 and row['runtime_persons'] == 3
    assert not row['same_count'] and row['max_box_rel'] == 0


@pytest.mark.parametrize('option', [
    'model.head.num_stages=1', 'model.data_preprocessor.pad_size_divisor=64',
    'model.test_cfg.flip_test=True'
])
def test_runtime_evaluation_refuses_model_options_outside_the_graph(
        option, capsys):
    tool = load_tool('tools/deployment/test_runtime.py')
    err = _refused(tool.parse_args, ['m.onnx', '--cfg-options', option],
                   capsys)
    assert f'--cfg-options {option.split("=")[0]}: the exported graph' in err


def test_runtime_evaluation_applies_test_cfg_as_pytorch_does():
    from mmengine.config import ConfigDict
    tool = load_tool('tools/deployment/test_runtime.py')

    class Exported:
        settings = dict(num_queries=12)
        max_per_img = 12

    def settings(**model):
        return tool.persons_settings(Exported, ConfigDict(model))

    assert settings() == dict(max_per_img=12, score_thr=None)
    assert settings(head=dict(max_per_img=5)) == dict(
        max_per_img=5, score_thr=None)
    assert settings(
        head=dict(max_per_img=5), test_cfg=dict(max_per_img=1,
                                                score_thr=0.9)) == dict(
                                                    max_per_img=1,
                                                    score_thr=0.9)
    # as the PyTorch head: at most the query count
    assert settings(test_cfg=dict(max_per_img=100))['max_per_img'] == 12
    for test_cfg, message in ((dict(precision='fp16'),
                               'precision must be one of'),
                              (dict(precision='bf16'), "is PyTorch's"),
                              (dict(score_thr=float('nan')),
                               'score_thr must be a pose score')):
        with pytest.raises(ValueError, match=message):
            settings(test_cfg=test_cfg)
    kept = tool.above(
        dict(
            bbox_scores=np.array([0.95, 0.5, 0.9]),
            keypoints=np.zeros((3, 17, 2))), 0.9)
    assert kept['bbox_scores'].tolist() == [0.95, 0.9]
    assert kept['keypoints'].shape == (2, 17, 2)


def test_runtime_evaluation_hands_test_cfg_options_to_the_runtime(monkeypatch):
    """--cfg-options model.test_cfg.max_per_img/score_thr reach the
    evaluation (they were ignored: the same AP with and without)."""
    from mmengine.config import Config

    from querypose_mm.deployment.runtimes import CONFIG_KEY
    tool = load_tool('tools/deployment/test_runtime.py')

    class Exported:
        settings = dict(num_queries=12, num_keypoints=17)
        max_per_img = 12
        metadata = {CONFIG_KEY: Config.fromfile(CONFIG).pretty_text}

    monkeypatch.setattr(tool, 'build_runtime', lambda *a, **k: Exported)
    asked = []
    monkeypatch.setattr(
        tool, 'evaluate', lambda runtime, cfg, batch_size, **settings:
        (asked.append(settings), {
            'coco/AP': 0.0
        })[1])
    tool.main([
        'm.onnx', '--cfg-options', 'model.test_cfg.max_per_img=1',
        'model.test_cfg.score_thr=0.9'
    ])
    assert asked == [dict(max_per_img=1, score_thr=0.9)]
    with pytest.raises(ValueError, match="precision='bf16' is PyTorch's"):
        tool.main(['m.onnx', '--cfg-options', 'model.test_cfg.precision=bf16'])


def test_runtime_evaluation_checks_out_before_loading(tmp_path, monkeypatch):
    tool = load_tool('tools/deployment/test_runtime.py')
    monkeypatch.setattr(tool, 'build_runtime',
                        lambda *a, **k: pytest.fail('model loaded'))
    with pytest.raises(IsADirectoryError, match='--out'):
        tool.main(['m.onnx', '--out', str(tmp_path)])


# ----- the benchmark -------------------------------------------------------


@pytest.mark.parametrize('argv,message', [
    (['--runs', '0'], 'argument --runs: must be a positive integer'),
    (['--batch-size', '0'
      ], 'argument --batch-size: must be a positive integer'),
    (['--rounds', '0'], 'argument --rounds: must be a positive integer'),
    (['--rounds', '-2'], 'argument --rounds: must be a positive integer'),
    (['--warmup', '-1'], 'argument --warmup: must be an integer >= 0'),
    (['--short-side', '0'
      ], 'argument --short-side: must be a positive integer'),
    (['--threads', '0'], 'argument --threads: must be a positive integer'),
    (['--models', 'querypose-tiny@'], 'has no mode after "@"'),
])
def test_benchmark_refuses_counts_and_modes_that_measure_nothing(
        argv, message, capsys):
    benchmark = load_tool('tools/analysis/benchmark.py')
    assert message in _refused(benchmark.parse_args, argv, capsys)


def test_benchmark_writes_a_failed_row_and_exits_1(tmp_path, monkeypatch,
                                                   capsys):
    """A row whose measurement fails in its process is written with the
    error it raised there, and the tool exits with status 1."""
    benchmark = load_tool('tools/analysis/benchmark.py')

    def fail(_fn, *_args):
        raise TypeError("'FFN' object is not subscriptable")

    monkeypatch.setattr(benchmark, 'in_fresh_process', fail)
    with pytest.raises(SystemExit) as exited:
        benchmark.main(['--models', 'edpose-r50', '--out-dir', str(tmp_path)])
    assert exited.value.code == 1
    with open(tmp_path / 'benchmark.json') as f:
        row = json.load(f)['results'][0]
    assert row['model'] == 'edpose-r50@fp32' and row['mode'] == 'fp32'
    assert row['error'] == "TypeError: 'FFN' object is not subscriptable"
    assert 'FAILED: edpose-r50@fp32' in capsys.readouterr().err


def test_benchmark_out_dir_that_is_a_file_is_refused(tmp_path, capsys):
    benchmark = load_tool('tools/analysis/benchmark.py')
    (tmp_path / 'taken').write_text('x')
    err = _refused(benchmark.parse_args,
                   ['--out-dir', str(tmp_path / 'taken')], capsys)
    assert '--out-dir' in err and 'is a file' in err
