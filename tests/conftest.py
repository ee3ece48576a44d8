import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_DATA = osp.join(REPO_ROOT, 'tests', 'data')
COCO_MINI = osp.join(REPO_ROOT, 'data', 'coco_mini')


@pytest.fixture(autouse=True)
def mmpose_default_scope():
    """Build unprefixed types in mmpose's registries, as mmpose configs do."""
    import querypose_mm  # noqa: F401
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=True)
