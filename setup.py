"""Packaging for querypose_mm (an OpenMMLab plugin).

Install the pinned OpenMMLab stack with ``bash tools/setup_env.sh``; it ends
with ``pip install --no-deps -e .`` because resolving mmpose 1.3.2's own
requirements would try to build chumpy, which fails.
"""
import os.path as osp
import re
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    with open(osp.join(HERE, 'querypose_mm', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def parse_requirements(fname: str) -> list:
    with open(osp.join(HERE, 'requirements', fname)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


setup(
    name='querypose_mm',
    version=read_version(),
    description='QueryPose (NeurIPS 2022) sparse multi-person pose regression '
    'for MMPose',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'demo')),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=parse_requirements('runtime.txt'),
    extras_require={'tests': parse_requirements('tests.txt')},
    zip_safe=False,
)
