"""The official QueryPose modules, read from a checkout the user gives.

The official repository (github buptxyb666/QueryPose) is never copied into
this one: :func:`official_tree` finds its ``projects/querypose`` folder in a
work tree, or extracts the few files the comparison imports from a git
directory at a revision (``git show``) into a temporary folder, and
:func:`import_official` imports them as a package without running its
``__init__.py`` (which would import the whole detectron2 detector).
"""
import contextlib
import importlib
import inspect
import itertools
import os
import os.path as osp
import subprocess
import sys
import tempfile
import types
from typing import Iterator, NamedTuple, Optional

import yaml

from .standins import CfgNode, installed

PROJECT = 'projects/querypose'
# what the comparison imports or reads, relative to PROJECT
MODULE_FILES = ('querypose/head.py', 'querypose/loss.py',
                'querypose/real_nvp.py', 'querypose/config.py',
                'querypose/util/__init__.py', 'querypose/util/box_ops.py',
                'querypose/util/misc.py')
CONFIG_DIR = 'configs'
DEFAULT_YAML = 'querypose.res50.100pro.3x.yaml'
_package_ids = itertools.count()


class OfficialModules(NamedTuple):
    """The imported official modules and where they came from.

    Attributes:
        head: ``querypose/head.py`` (``Decoder``).
        loss: ``querypose/loss.py`` (``SetCriterion``, ``HungarianMatcher``).
        box_ops: ``querypose/util/box_ops.py``.
        config: ``querypose/config.py`` (``add_querypose_config``).
        project_dir: The ``projects/querypose`` folder read.
        api: ``'pre-v1'`` (the decoder decodes every query, the criterion
            matches: e249749 and before) or ``'v1'`` (the decoder matches
            and decodes the matched queries in training: bf0814f).
    """
    head: types.ModuleType
    loss: types.ModuleType
    box_ops: types.ModuleType
    config: types.ModuleType
    project_dir: str
    api: str


def _git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(['git', '--git-dir', git_dir, *args],
                          check=True,
                          capture_output=True).stdout


def _git_dir(path: str) -> Optional[str]:
    """The git directory of a work tree or a bare / mirror git dir, or None
    when ``path`` is neither."""
    try:
        out = subprocess.run(['git', '-C', path, 'rev-parse', '--git-dir'],
                             check=True,
                             capture_output=True,
                             text=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    return osp.normpath(osp.join(path, out))


def resolve_revision(src: str, rev: str) -> str:
    """The full commit id of ``rev`` in the checkout ``src``."""
    git_dir = _git_dir(src)
    if git_dir is None:
        raise ValueError(f'--rev needs a git checkout; {src} is not one')
    try:
        return _git(git_dir, 'rev-parse', '--verify',
                    f'{rev}^{{commit}}').decode().strip()
    except subprocess.CalledProcessError:
        raise ValueError(f'{src} has no revision {rev!r}') from None


@contextlib.contextmanager
def official_tree(src: str, rev: Optional[str] = None) -> Iterator[str]:
    """The official ``projects/querypose`` folder to read.

    Args:
        src (str): A work tree of the official repository, or (with ``rev``)
            any git checkout of it, a bare or mirror git directory included.
        rev (str, optional): A revision: its files are extracted with
            ``git show`` into a temporary folder, removed on exit. Without
            it, ``src``'s files are read as they are.

    Yields:
        str: The folder holding ``querypose/`` and ``configs/``.
    """
    if rev is None:
        project = osp.join(src, PROJECT)
        missing = [
            f for f in MODULE_FILES if not osp.isfile(osp.join(project, f))
        ]
        if missing:
            hint = (' (a git directory without a work tree needs --rev)'
                    if _git_dir(src) else '')
            raise ValueError(f'{src} is not a QueryPose work tree: it lacks '
                             f'{PROJECT}/{missing[0]}{hint}')
        yield project
        return
    commit = resolve_revision(src, rev)
    git_dir = _git_dir(src)
    configs = _git(git_dir, 'ls-tree', '--name-only', commit,
                   f'{PROJECT}/{CONFIG_DIR}/').decode().split()
    with tempfile.TemporaryDirectory(prefix='querypose-official-') as tmp:
        for path in [f'{PROJECT}/{f}' for f in MODULE_FILES] + configs:
            try:
                text = _git(git_dir, 'show', f'{commit}:{path}')
            except subprocess.CalledProcessError:
                raise ValueError(
                    f'{src} at {rev} has no {path}; is it the official '
                    'QueryPose repository?') from None
            out = osp.join(tmp, osp.relpath(path, PROJECT))
            os.makedirs(osp.dirname(out), exist_ok=True)
            with open(out, 'wb') as f:
                f.write(text)
        yield tmp


def import_official(project_dir: str) -> OfficialModules:
    """Import the official modules of ``project_dir`` as a fresh package.

    The detectron2 / fvcore they import must be importable (installed, or
    the stand-ins of :func:`standins.standin_modules`).
    """
    name = f'_official_querypose_{next(_package_ids)}'
    package = types.ModuleType(name)
    package.__path__ = [osp.join(project_dir, 'querypose')]
    sys.modules[name] = package
    modules = {
        m: importlib.import_module(f'{name}.{path}')
        for m, path in (('head', 'head'), ('loss', 'loss'),
                        ('box_ops', 'util.box_ops'), ('config', 'config'))
    }
    decoder_args = inspect.signature(modules['head'].Decoder).parameters
    api = 'v1' if 'matcher' in decoder_args else 'pre-v1'
    return OfficialModules(project_dir=project_dir, api=api, **modules)


def official_cfg(official: OfficialModules,
                 yaml_name: str = DEFAULT_YAML,
                 light: bool = False):
    """The official config of ``yaml_name`` (its ``_BASE_`` first) with
    the official defaults (``add_querypose_config``), in detectron2's
    ``CfgNode`` when installed, else in the stand-in."""
    if installed('detectron2'):
        from detectron2.config import get_cfg
        cfg = get_cfg()
        official.config.add_querypose_config(cfg)
        cfg.merge_from_file(
            osp.join(official.project_dir, CONFIG_DIR, yaml_name))
    else:
        cfg = CfgNode()
        cfg.merge_dict(dict(MODEL={}, SOLVER={}, TEST=dict(AUG={})))
        official.config.add_querypose_config(cfg)
        for values in _yaml_chain(
                osp.join(official.project_dir, CONFIG_DIR, yaml_name)):
            cfg.merge_dict(values)
    cfg.MODEL.QueryPose.LIGHT_VERSION = light
    return cfg


def _yaml_chain(path: str) -> list:
    """A detectron2 yaml file and its ``_BASE_`` files, base first."""
    with open(path) as f:
        values = yaml.safe_load(f)
    base = values.pop('_BASE_', None)
    chain = _yaml_chain(osp.join(osp.dirname(path), base)) if base else []
    return chain + [values]
