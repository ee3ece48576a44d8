import pytest

import querypose_mm
from querypose_mm.utils import SUPPORTED_VERSIONS, check_dependency_versions


def test_installed_stack_is_supported():
    import mmcv
    import mmdet
    import mmengine

    import mmpose
    installed = dict(
        mmengine=mmengine.__version__,
        mmcv=mmcv.__version__,
        mmdet=mmdet.__version__,
        mmpose=mmpose.__version__)
    assert installed == dict(
        mmengine='0.10.7', mmcv='2.1.0', mmdet='3.3.0', mmpose='1.3.2')
    check_dependency_versions(installed)
    assert querypose_mm.__version__


@pytest.mark.parametrize('name,version', [('mmcv', '2.2.0'), ('mmcv', '1.7.2'),
                                          ('mmdet', '3.2.0'),
                                          ('mmpose', '1.4.0'),
                                          ('mmengine', '1.0.0')])
def test_out_of_range_version_names_package_range_and_fix(name, version):
    low, high = SUPPORTED_VERSIONS[name]
    with pytest.raises(ImportError) as err:
        check_dependency_versions({name: version})
    message = str(err.value)
    assert f'{name}=={version} is installed' in message
    assert f'{name}>={low},<{high}' in message
    assert 'tools/setup_env.sh' in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ImportError) as err:
        check_dependency_versions({'mmcv': '2.2.0', 'mmpose': '1.0.0'})
    assert 'mmcv==2.2.0' in str(err.value)
    assert 'mmpose==1.0.0' in str(err.value)


def test_edges_of_the_range():
    check_dependency_versions({'mmcv': '2.0.0', 'mmdet': '3.3.0'})
    check_dependency_versions({'mmcv': '2.1.9'})
    with pytest.raises(ImportError):
        check_dependency_versions({'mmcv': '2.2.1'})
