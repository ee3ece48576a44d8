"""The benchmark's modules (tools/analysis/benchmarking): the report's
ratios, table and chart on made-up rows, the module groups of the
breakdown, a row measured in a fresh process, and the derived
score-threshold row's threshold."""
import re

import pytest
from benchmarking import (ExportedModel, Settings, as_batch, compare_latencies,
                          format_table, in_fresh_process, load_inputs, measure,
                          module_groups, split_entry, write_results)
from benchmarking.measure import score_thr_for


def row(model, rounds, **extra):
    name, mode = split_entry(model)
    return dict(
        model=model,
        mode=mode,
        params_m=1.0,
        gmacs=2.0,
        latency_ms_median=min(rounds),
        latency_ms_p90=max(rounds),
        throughput_img_s=None if mode == 'onnxruntime' else 1.0,
        throughput_batch=None if mode == 'onnxruntime' else 2,
        peak_mem_mb=100.0,
        input_hw=[256, 384],
        device='cpu',
        torch='x',
        mmcv='y',
        rounds_latency_ms=rounds,
        latency_runs_ms=list(rounds),
        threads=2,
        **extra)


def test_ratios_are_taken_within_rounds_and_fall_back_to_fp32():
    results = [
        row('querypose-r50@fp32', [300.0, 200.0]),
        row('querypose-r50@channels-last', [240.0, 180.0]),
        row('querypose-r50@onnxruntime', [150.0, 120.0]),
        row('edpose-r50@fp32', [100.0, 50.0]),
        row('edpose-r50@channels-last', [120.0, 60.0]),
        dict(model='edpose-r50@autocast', mode='autocast', error='TypeError'),
    ]
    text = format_table(results)
    fp32, cl, ort, edpose = results[:4]
    # per round 3.0 and 4.0: median 3.5 (a ratio of the kept rounds'
    # latencies, 200 / 50, would be 4.0)
    assert fp32['edpose_ratio'] == pytest.approx(3.5)
    assert cl['edpose_ratio'] == pytest.approx((2.0 + 3.0) / 2)
    assert cl['edpose_ratio_to'] == 'edpose-r50@channels-last'
    assert ort['edpose_ratio'] == pytest.approx((1.5 + 2.4) / 2)
    assert ort['edpose_ratio_to'] == 'edpose-r50@fp32'
    assert edpose['edpose_ratio'] == 1.0
    assert '(vs edpose-r50@fp32)' in text and 'failed: TypeError' in text
    # each mode over fp32 PyTorch, within rounds: 0.5 and 0.6
    assert 'querypose-r50@onnxruntime / querypose-r50@fp32: 0.55' in text
    assert 'querypose-r50@channels-last / querypose-r50@fp32: 0.85' in text


def test_compare_shows_each_round_of_each_row():
    rounds = {
        'querypose-r50@bf16': [row('querypose-r50@bf16', [30.0, 40.0])],
        'edpose-r50@fp32': [row('edpose-r50', [100.0, 120.0])] * 2,
        'rtmo-l@fp32': [dict(model='rtmo-l', error='TypeError')],
    }
    text = compare_latencies(rounds)
    assert 'latency, batch 1' in text and 'round 2' in text
    assert 'querypose-r50@bf16' in text and 'rtmo-l' not in text
    assert 'milliseconds' in text
    # the medians, a round that did not run left blank
    assert re.search(r'edpose-r50@fp32\s+\|\s+100\.0\s+\|\s+100\.0', text)
    assert re.search(r'querypose-r50@bf16\s+\|\s+30\.0\s+\|\s*$', text,
                     re.MULTILINE)


def test_write_results_writes_json_csv_and_chart(tmp_path):
    import json
    results = [row('querypose-tiny', [20.0]), row('edpose-r50', [10.0])]
    write_results(results, dict(rounds=1), str(tmp_path))
    with open(tmp_path / 'benchmark.json') as f:
        written = json.load(f)['results']
    assert written[0]['edpose_ratio'] == pytest.approx(2.0)
    assert 'edpose_ratio' in (tmp_path / 'benchmark.csv').read_text()
    assert (tmp_path / 'benchmark.png').stat().st_size > 1000


def test_unknown_names_and_modes_are_refused():
    with pytest.raises(ValueError, match="unknown mode 'fp8'"):
        split_entry('querypose-r50@fp8')
    with pytest.raises(ValueError, match='unknown model'):
        split_entry('querypose-r500')
    for mode in ('onnxruntime', 'openvino-bf16', 'bf16'):
        with pytest.raises(ValueError, match="is QueryPose's"):
            split_entry(f'edpose-r50@{mode}')
    with pytest.raises(ValueError, match='decodes every query'):
        split_entry('querypose-r50-decode5@openvino')
    assert split_entry('querypose-r50-decode5@bf16') == (
        'querypose-r50-decode5', 'bf16')
    assert split_entry('rtmo-l') == ('rtmo-l', 'fp32')


def test_the_derived_row_decodes_exactly_the_count_it_names():
    import torch

    from querypose_mm.models.utils import image_whwh
    from querypose_mm.testing import build_quickstart_model
    model = build_quickstart_model(
        keypoint_decoder=dict(update_instance_query=False)).eval()
    batch = as_batch(load_inputs(256, 427, 1))
    for count in (1, 5, 12):
        thr = score_thr_for(model, batch, count)
        with torch.no_grad():
            data = model.data_preprocessor(batch, False)
            feats = model.extract_feat(data['inputs'])
            last = model.head.run_stages_above(
                feats, image_whwh(data['data_samples'], 'cpu'), thr)
        assert len(last.decoded) == count


def test_module_groups_follow_the_models_tree():
    """A group per child of the estimator, of its head and of its keypoint
    decoders, by path, each stage in its child's group; together they hold
    every parameter once."""
    from querypose_mm.testing import build_quickstart_model
    model = build_quickstart_model()
    head = model.head
    groups = module_groups(model)
    assert groups['neck'] == [model.neck]
    assert groups['head.box_decoders'] == list(head.box_decoders)
    assert groups['head.keypoint_decoders.spegm'] == [
        decoder.spegm for decoder in head.keypoint_decoders
    ]
    assert 'head' not in groups and 'head.keypoint_decoders' not in groups
    grouped = [
        id(param) for modules in groups.values() for module in modules
        for param in module.parameters()
    ]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())


def test_a_row_is_measured_in_a_fresh_process_that_returns_its_error(tmp_path):
    """The pool's call raises the worker's exception here: an exported file
    that is not there, before anything is timed."""
    missing = str(tmp_path / 'missing.onnx')
    settings = Settings(
        short_side=256,
        max_size=427,
        runs=1,
        warmup=0,
        batch_size=1,
        device='cpu',
        threads=None,
        train_step=False)
    with pytest.raises(FileNotFoundError, match='missing.onnx'):
        in_fresh_process(measure, 'querypose-tiny@onnxruntime', settings,
                         False, ExportedModel(missing, 1.0, 1.0))
