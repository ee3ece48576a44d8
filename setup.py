"""Build hook of querypose_mm (metadata: pyproject.toml).

As OpenMMLab packages do, the configs, tools and model index are shipped
inside the package under ``querypose_mm/.mim`` so that mim finds them in an
installed wheel: copied for a wheel or sdist, linked for an editable
install. Install the pinned stack with ``bash tools/setup_env.sh``, which
ends with ``pip install --no-deps --no-build-isolation -e .``.
"""
import os
import os.path as osp
import shutil
import sys
from setuptools import setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'demo', 'model-index.yml')


def add_mim_extension() -> None:
    """Fill ``querypose_mm/.mim`` with copies (wheel, sdist) or symbolic
    links (editable install) of the files mim reads."""
    if any(cmd in sys.argv for cmd in ('bdist_wheel', 'sdist')):
        mode = 'copy'
    elif any(cmd in sys.argv for cmd in ('develop', 'editable_wheel')):
        mode = 'symlink'
    else:
        return
    mim_dir = osp.join(HERE, 'querypose_mm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        source, target = osp.join(HERE, name), osp.join(mim_dir, name)
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        if mode == 'symlink':
            os.symlink(osp.relpath(source, mim_dir), target)
        elif osp.isdir(source):
            shutil.copytree(
                source,
                target,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(source, target)


if __name__ == '__main__':
    add_mim_extension()
    setup()
