"""Arguments that would silently do something else are refused with a
message naming them."""

import pytest
import torch

from conftest import load_tool
from querypose_mm.testing import (QUICKSTART_CONFIG, build_quickstart_model,
                                  get_config_path)


@pytest.mark.parametrize('value', ['0', '-3'])
def test_quickstart_refuses_no_iterations(value, capsys):
    with pytest.raises(SystemExit):
        load_tool('tools/quickstart.py').parse_args(['--iters', value])
    assert f'--iters: must be at least 1, got {value}' in \
        capsys.readouterr().err


def test_resume_from_weights_without_training_state_says_what_to_do(tmp_path):
    weights = str(tmp_path / 'published.pth')
    torch.save(dict(state_dict=build_quickstart_model().state_dict()), weights)
    train = load_tool('tools/train.py')
    args = train.parse_args(
        [get_config_path(QUICKSTART_CONFIG), '--resume', weights])
    with pytest.raises(
            ValueError,
            match='no training state.*load_from=PATH without '
            '--resume'):
        train.merge_args(train.Config.fromfile(args.config), args)
