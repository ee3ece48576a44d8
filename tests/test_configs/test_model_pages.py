"""The model pages and metafiles: every config they name exists and is
named the same way in both, and every config of the project is listed."""
import glob
import os.path as osp
import re

import pytest
import yaml

from conftest import REPO_ROOT

PAGES = {
    'coco': 'configs/querypose/coco/querypose_coco.md',
    'crowdpose': 'configs/querypose/crowdpose/querypose_crowdpose.md',
}


def _metafile_models():
    with open(osp.join(REPO_ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    models = []
    for metafile in index['Import']:
        with open(osp.join(REPO_ROOT, metafile)) as f:
            models += yaml.safe_load(f)['Models']
    return models


def test_model_index_tooling_reads_the_metafiles():
    modelindex = pytest.importorskip('modelindex.load_model_index')
    index = modelindex.load(osp.join(REPO_ROOT, 'model-index.yml'))
    names = {model.name for model in index.models}
    assert 'querypose_r50-fpn_8xb2-280k_coco-800x1333' in names
    assert {model.in_collection for model in index.models} == {'QueryPose'}


def test_every_config_is_in_a_metafile_and_on_a_model_page():
    configs = {
        osp.relpath(path, REPO_ROOT)
        for path in glob.glob(
            osp.join(REPO_ROOT, 'configs/querypose/**/*.py'), recursive=True)
    }
    listed = {model['Config'] for model in _metafile_models()}
    assert listed == configs
    linked = set()
    for page in PAGES.values():
        with open(osp.join(REPO_ROOT, page)) as f:
            for link in re.findall(r'\]\((\./[^)]+\.py)\)', f.read()):
                linked.add(osp.normpath(osp.join(osp.dirname(page), link)))
    assert linked == configs


def test_metafile_names_and_paper_figures():
    models = _metafile_models()
    for model in models:
        assert model['Name'] == osp.basename(model['Config'])[:-3]
        for result in model.get('Results', []):
            assert 0 < result['Metrics']['AP'] < 1
    by_name = {m['Name']: m for m in models}
    # paper Table 4 and Table 6 headline figures
    ap = {
        name: by_name[name]['Results'][0]['Metrics']['AP']
        for name in by_name if 'Results' in by_name[name]
    }
    assert ap['querypose_r50-fpn_8xb2-280k_coco-800x1333'] == 0.687
    assert ap['querypose_hrnet-w48-fpn_8xb2-280k_coco-800x1333'] == 0.736
    assert ap['querypose_swin-l-fpn_8xb2-280k_crowdpose-800x1333'] == 0.727
