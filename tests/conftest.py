import os.path as osp
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_DATA = osp.join(REPO_ROOT, 'tests', 'data')
COCO_MINI = osp.join(REPO_ROOT, 'data', 'coco_mini')
# the benchmark's modules (tools/analysis/benchmarking) belong to the tool,
# which imports them from its own folder, as its tests do
sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis'))


@pytest.fixture(autouse=True)
def mmpose_default_scope():
    """Build unprefixed types in mmpose's registries, as mmpose configs do."""
    import querypose_mm  # noqa: F401
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=True)


def load_tool(rel_path: str):
    """A script of tools/ (not a package) as a module, to call its
    ``main(argv)`` or ``parse_args`` in the test process."""
    import importlib.util
    path = osp.join(REPO_ROOT, rel_path)
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def openvino_crashes_here() -> bool:
    """True under an oneDNN ISA cap that OpenVINO's CPU plugin crashes on
    (the AVX2 check run of an AVX-512 machine): its tests are skipped."""
    from querypose_mm.deployment.runtimes import onednn_isa_cap_below_cpu
    return onednn_isa_cap_below_cpu() is not None
