"""Version checks of the OpenMMLab stack that querypose_mm is built against."""
from typing import Dict, Mapping, Tuple

from mmengine.utils import digit_version

# package -> (minimum version, exclusive maximum version)
SUPPORTED_VERSIONS: Dict[str, Tuple[str, str]] = {
    'mmengine': ('0.10.0', '1.0.0'),
    # mmdet 3.3.0 itself refuses mmcv >= 2.2.0.
    'mmcv': ('2.0.0', '2.2.0'),
    'mmdet': ('3.3.0', '3.4.0'),
    'mmpose': ('1.3.0', '1.4.0'),
}


def check_dependency_versions(installed: Mapping[str, str]) -> None:
    """Raise a clear error if an OpenMMLab package is outside its range.

    Args:
        installed (Mapping[str, str]): Package name to installed version
            string, e.g. ``{'mmcv': '2.1.0'}``. Packages of
            :data:`SUPPORTED_VERSIONS` missing from it are not checked.

    Raises:
        ImportError: Naming every package out of range, its installed version,
            the supported range and the command that installs the right one.
    """
    problems = []
    for name, (low, high) in SUPPORTED_VERSIONS.items():
        if name not in installed:
            continue
        version = installed[name]
        if not digit_version(low) <= digit_version(version) < digit_version(
                high):
            problems.append(
                f'{name}=={version} is installed, but querypose_mm '
                f'needs {name}>={low},<{high}')
    if problems:
        raise ImportError('; '.join(problems) +
                          '. Run `bash tools/setup_env.sh` from the '
                          'querypose_mm repository to install the pinned '
                          'stack (torch 2.14.1, mmengine 0.10.7, mmcv 2.1.0, '
                          'mmdet 3.3.0, mmpose 1.3.2).')


def check_installed_stack() -> None:
    """Check the installed stack, mmcv before mmdet and mmpose are imported.

    mmdet asserts on the mmcv version while it is imported, so mmcv is checked
    first to give our message (with the fix) rather than a bare assertion.
    """
    import mmcv
    import mmengine
    check_dependency_versions({
        'mmengine': mmengine.__version__,
        'mmcv': mmcv.__version__
    })
    import mmdet

    import mmpose
    check_dependency_versions({
        'mmdet': mmdet.__version__,
        'mmpose': mmpose.__version__
    })
