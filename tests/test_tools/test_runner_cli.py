"""The runner options tools/train.py and tools/test.py share
(querypose_mm/engine/cli.py), in the test process: the same flags in both,
the work dir and ``--cfg-options`` applied as each tool did before, and the
warning on a bf16 config under an oneDNN ISA cap."""
import os
import warnings

import pytest

from conftest import load_tool
from querypose_mm.testing import QUICKSTART_CONFIG, get_config_path

CONFIG = get_config_path(QUICKSTART_CONFIG)


@pytest.fixture(scope='module')
def train():
    return load_tool('tools/train.py')


@pytest.fixture(scope='module')
def test_tool():
    return load_tool('tools/test.py')


def _runner_help(tool, argv, capsys) -> str:
    with pytest.raises(SystemExit):
        tool.parse_args([*argv, '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    return text[text.rindex('--cfg-options'):]


def test_both_tools_take_the_same_runner_options(train, test_tool, capsys,
                                                 monkeypatch):
    train_help = _runner_help(train, [CONFIG], capsys)
    test_help = _runner_help(test_tool, [CONFIG, 'x.pth'], capsys)
    assert train_help == test_help
    for text in ('override settings of the config, key=value pairs',
                 '{none,pytorch,slurm,mpi}', 'job launcher',
                 '--local_rank LOCAL_RANK, --local-rank LOCAL_RANK'):
        assert text in train_help

    for tool, argv in ((train, [CONFIG]), (test_tool, [CONFIG, 'x.pth'])):
        monkeypatch.delenv('LOCAL_RANK', raising=False)
        args = tool.parse_args([*argv, '--local-rank', '3'])
        assert (args.launcher, args.cfg_options) == ('none', None)
        assert os.environ['LOCAL_RANK'] == '3'
        # a launcher's LOCAL_RANK is kept
        tool.parse_args([*argv, '--local_rank', '5'])
        assert os.environ['LOCAL_RANK'] == '3'


def test_work_dir_and_cfg_options_as_each_tool_applies_them(train, test_tool):
    options = ['--cfg-options', 'work_dir=from_options']

    def merged(tool, argv):
        args = tool.parse_args(argv)
        return tool.merge_args(tool.Config.fromfile(CONFIG), args)

    # no --work-dir: work_dirs/CONFIG_NAME, or the options' work_dir
    name = QUICKSTART_CONFIG.split('/')[-1][:-3]
    assert merged(train, [CONFIG]).work_dir == f'./work_dirs/{name}'
    assert merged(test_tool,
                  [CONFIG, 'x.pth']).work_dir == f'./work_dirs/{name}'
    assert merged(train, [CONFIG, *options]).work_dir == 'from_options'
    assert merged(test_tool,
                  [CONFIG, 'x.pth', *options]).work_dir == 'from_options'
    # both: tools/train.py merges the options last (as mmpose's does),
    # tools/test.py first, so --work-dir wins there
    both = ['--work-dir', 'from_flag', *options]
    assert merged(train, [CONFIG, *both]).work_dir == 'from_options'
    assert merged(test_tool, [CONFIG, 'x.pth', *both]).work_dir == 'from_flag'
    cfg = merged(test_tool, [CONFIG, 'x.pth', '--launcher', 'pytorch'])
    assert (cfg.launcher, cfg.load_from) == ('pytorch', 'x.pth')


class _StopBeforeRunner(Exception):
    pass


class _NoRunner:

    @staticmethod
    def from_cfg(cfg):
        raise _StopBeforeRunner


@pytest.mark.parametrize('tool_name,options', [
    ('test', ["model.test_cfg.precision='bf16'"]),
    ('train',
     ['optim_wrapper.type=AmpOptimWrapper', "optim_wrapper.dtype='bfloat16'"]),
    ('train', ["model.test_cfg.precision='bf16'"]),
])
def test_tools_warn_of_a_bf16_config_under_an_isa_cap(tool_name, options,
                                                      train, test_tool,
                                                      tmp_path, monkeypatch):
    tool = train if tool_name == 'train' else test_tool
    monkeypatch.setattr(tool, 'Runner', _NoRunner)
    monkeypatch.setattr('mmengine.device.get_device', lambda: 'cpu')
    checkpoint = tmp_path / 'x.pth'
    checkpoint.write_bytes(b'')
    argv = [CONFIG, '--work-dir', str(tmp_path)]
    if tool is test_tool:
        argv.insert(1, str(checkpoint))
    argv += ['--cfg-options', *options]

    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
    with pytest.warns(UserWarning,
                      match='precision|dtype') as record, \
            pytest.raises(_StopBeforeRunner):
        tool.main(argv)
    messages = [str(w.message) for w in record]
    assert any('ONEDNN_MAX_CPU_ISA=AVX2' in m and 'slower' in m
               for m in messages)

    # no cap, or one that keeps the bf16 kernels: no warning
    for cap in (None, 'AVX512_CORE_AMX'):
        if cap is None:
            monkeypatch.delenv('ONEDNN_MAX_CPU_ISA')
        else:
            monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', cap)
        with warnings.catch_warnings():
            warnings.simplefilter('error', UserWarning)
            with pytest.raises(_StopBeforeRunner):
                tool.main(argv)


def test_no_bf16_warning_for_fp32_or_a_validation_free_training(
        train, tmp_path, monkeypatch):
    monkeypatch.setattr(train, 'Runner', _NoRunner)
    monkeypatch.setattr('mmengine.device.get_device', lambda: 'cpu')
    monkeypatch.setenv('ONEDNN_MAX_CPU_ISA', 'AVX2')
    for extra in (['--amp'], [
            '--no-validate', '--cfg-options', "model.test_cfg.precision='bf16'"
    ]):
        with warnings.catch_warnings():
            warnings.simplefilter('error', UserWarning)
            with pytest.raises(_StopBeforeRunner):
                train.main([CONFIG, '--work-dir', str(tmp_path), *extra])
