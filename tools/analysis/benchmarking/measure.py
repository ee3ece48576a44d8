"""Timing (``torch.utils.benchmark``), MACs, memory and the per-module
breakdown (``torch.profiler``) of one model."""
import os.path as osp
import resource
from collections import defaultdict
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional

import numpy as np

from .models import REPO_ROOT, SPECS, as_batch, build_model, load_inputs

# the ops that only change a tensor's dtype or memory layout
CONVERSION_OPS = ('aten::to', 'aten::_to_copy', 'aten::copy_',
                  'aten::contiguous', 'aten::clone')


def time_calls(fn: Callable[[], object],
               runs: int,
               warmup: int,
               label: str = 'latency',
               sub_label: Optional[str] = None,
               description: Optional[str] = None) -> List[float]:
    """Seconds of each of ``runs`` calls of ``fn`` after ``warmup``, by
    ``torch.utils.benchmark.Timer`` (at torch's thread count, synchronising
    an accelerator)."""
    import torch
    from torch.utils.benchmark import Timer
    timer = Timer(
        stmt='fn()',
        globals=dict(fn=fn),
        num_threads=torch.get_num_threads(),
        label=label,
        sub_label=sub_label,
        description=description)
    for _ in range(warmup):
        fn()
    return [timer.timeit(1).median for _ in range(runs)]


def latency_figures(latency: List[float]) -> dict:
    """Median, p90 and every run of ``latency`` (seconds), in ms."""
    return dict(
        latency_ms_median=1000 * float(np.median(latency)),
        latency_runs_ms=[1000 * t for t in latency],
        latency_ms_p90=1000 * float(np.percentile(latency, 90)))


def peak_memory_mb(device: str) -> float:
    """Peak RSS of this process, or the peak CUDA allocation."""
    import torch
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def module_groups(model) -> Dict[str, list]:
    """QueryPose's modules by the role they play."""
    head = model.head
    groups = defaultdict(list)
    groups['backbone'].append(model.backbone)
    groups['FPN'].append(model.neck)
    groups['RoI extraction'] += [
        head.box_roi_extractor, head.pose_roi_extractor
    ]
    for box_decoder, kd in zip(head.box_decoders, head.keypoint_decoders):
        groups['box decoder (DIIHead)'].append(box_decoder)
        groups['keypoint conv stack'].append(kd.conv_stack)
        groups['SPEGM'].append(kd.spegm)
        groups['SIM'].append(kd.sim)
        groups['part MHA + FFN'] += [
            kd.part_attention, kd.part_attention_norm, kd.part_ffn,
            kd.part_ffn_norm
        ]
        groups['keypoint heads (coord, sigma)'] += [
            kd.coord_head, kd.sigma_head
        ] + [kd.instance_to_part] * (
            kd.instance_to_part is not None)
        if kd.update_instance_query:
            groups['Q_I update (Fig. 3b)'] += [
                kd.instance_conv, kd.instance_conv_norm, kd.instance_ffn,
                kd.instance_ffn_norm
            ]
    return groups


def _mark_groups(model) -> list:
    """Hooks that open a ``record_function`` range named after its group
    around each module of :func:`module_groups`; returns the handles."""
    import torch
    handles = []
    for group, modules in module_groups(model).items():
        for module in modules:
            ranges = []

            def enter(_module, _args, ranges=ranges, group=group):
                ranges.append(torch.profiler.record_function(group))
                ranges[-1].__enter__()

            def leave(_module, _args, _out, ranges=ranges):
                ranges.pop().__exit__(None, None, None)

            handles += [
                module.register_forward_pre_hook(enter),
                module.register_forward_hook(leave)
            ]
    return handles


def module_breakdown(model,
                     batch,
                     device: str,
                     runs: int,
                     precision=nullcontext) -> Dict[str, float]:
    """Mean milliseconds per module group over ``runs`` test steps, from
    ``torch.profiler`` (CPU time, or the accelerator's on CUDA), and the
    time and count of the dtype/layout conversion ops
    (:data:`CONVERSION_OPS`) anywhere in the step."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device.startswith('cuda'):
        activities.append(ProfilerActivity.CUDA)
    handles = _mark_groups(model)
    try:
        with torch.no_grad(), precision(), profile(
                activities=activities) as prof:
            for _ in range(runs):
                with torch.profiler.record_function('test_step'):
                    model.test_step(batch)
    finally:
        for handle in handles:
            handle.remove()
    attr = ('device_time_total'
            if device.startswith('cuda') else 'cpu_time_total')
    events = {event.key: event for event in prof.key_averages()}
    result = {
        group: getattr(events[group], attr) / 1000 / runs
        for group in module_groups(model) if group in events
    }
    total = getattr(events['test_step'], attr) / 1000 / runs
    result['other (preprocess, top-k, decode)'] = total - sum(result.values())
    result['dtype/layout conversions (within the above)'] = sum(
        events[op].self_cpu_time_total
        for op in CONVERSION_OPS if op in events) / 1000 / runs
    result['conversion ops per step'] = sum(
        events[op].count for op in CONVERSION_OPS if op in events) / runs
    return result


def count_macs(model, batch, precision=nullcontext) -> float:
    """Multiply-adds of one ``test_step`` (convolutions, matrix products),
    by ``torch.utils.flop_counter.FlopCounterMode``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    # FlopCounterMode's module tracker hooks the backward of every module
    # output that requires grad; a module that returns a parameter as is
    # (QueryPose's learnable proposals) would trip it
    requires_grad = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        with torch.no_grad(), precision(), FlopCounterMode(
                display=False) as counter:
            model.test_step(batch)
    finally:
        for param, flag in zip(model.parameters(), requires_grad):
            param.requires_grad_(flag)
    return counter.get_total_flops() / 2


def train_step(name: str, short_side: int, max_size: int, batch_size: int,
               runs: int, warmup: int, device: str) -> List[dict]:
    """QueryPose training iterations at ``batch_size``, with and without
    autocast (fp16 on CUDA, bf16 on the CPU): median s/iter, peak memory."""
    import torch
    from mmengine.optim import build_optim_wrapper

    from mmpose.datasets import CocoDataset
    model, cfg = build_model(name, device)
    model.train()
    dataset = CocoDataset(
        data_root=osp.join(REPO_ROOT, 'data/coco_mini'),
        data_mode='bottomup',
        ann_file='annotations/person_keypoints_train2017_quickstart.json',
        data_prefix=dict(img='train2017/'),
        pipeline=[
            dict(type='LoadImage'),
            dict(type='FilterInstances'),
            dict(
                type='RandomShortSideResize',
                scales=short_side,
                max_size=max_size),
            dict(type='PackPoseInputs')
        ])
    batch = as_batch([dataset[i % len(dataset)] for i in range(batch_size)])
    amp_dtype = torch.float16 if device.startswith('cuda') else torch.bfloat16
    results = []
    for use_amp in (False, True):
        label = str(amp_dtype).replace('torch.', '') if use_amp else 'off'
        optim_cfg = cfg.optim_wrapper.to_dict()
        if use_amp:
            optim_cfg.update(type='AmpOptimWrapper', dtype=amp_dtype)
        try:
            optim_wrapper = build_optim_wrapper(model, optim_cfg)
        except Exception as error:  # mmengine's AMP refuses the CPU
            results.append(dict(amp=label, error=str(error)))
            continue
        if device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        times = time_calls(
            lambda: model.train_step(batch, optim_wrapper),
            runs,
            warmup,
            label='train step',
            sub_label=name,
            description=label)
        results.append(
            dict(
                amp=label,
                batch_size=batch_size,
                iter_s_median=float(np.median(times)),
                peak_mem_mb=peak_memory_mb(device)))
    return results


def score_thr_for(model,
                  batch,
                  num_decoded: int,
                  precision=nullcontext) -> float:
    """The ``test_cfg.score_thr`` at which each image of ``batch`` decodes
    the keypoints of at least ``num_decoded`` queries (exactly that many
    for one image): the smallest, over the images, of the
    ``num_decoded``-th largest final class probability, read from the
    model's own ``test_step`` (its precision) by a hook on the last box
    decoder."""
    import torch
    final_cls = []
    handle = model.head.box_decoders[-1].register_forward_hook(
        lambda _module, _args, out: final_cls.append(out[0]))
    # a threshold no query reaches: the box stages alone
    model.test_cfg['score_thr'] = 1.0
    try:
        with torch.no_grad(), precision():
            model.test_step(batch)
    finally:
        handle.remove()
    probs = final_cls[-1].view(len(batch['inputs']), -1).sigmoid()
    return probs.topk(num_decoded, dim=1).values[:, -1].min().item()


def export_for_benchmark(name: str, onnx_file: str, short_side: int,
                         max_size: int) -> dict:
    """Export ``SPECS[name]`` (random weights) with a dynamic input for
    :func:`measure_runtime`; returns its params and GMACs, which are the
    PyTorch model's."""
    from querypose_mm.deployment import export_onnx
    model, cfg = build_model(name, 'cpu')
    single = as_batch(load_inputs(short_side, max_size, 1))
    resize = [
        t for t in cfg.test_dataloader.dataset.pipeline
        if t['type'] == 'RandomShortSideResize'
    ][0]
    resize.update(scales=short_side, max_size=max_size)
    # timing only: random weights can make the comparison with PyTorch
    # meaningless (docs/deployment.md)
    export_onnx(model, cfg, onnx_file, dynamic=True, verify=False)
    return dict(
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        gmacs=count_macs(model, single) / 1e9)


def measure_runtime(entry: str,
                    mode: str,
                    onnx_file: str,
                    exported: dict,
                    short_side: int,
                    max_size: int,
                    runs: int,
                    warmup: int,
                    batch_size: int,
                    latency_only: bool = False) -> dict:
    """Latency, throughput and peak RSS of the exported model in ONNX
    Runtime or OpenVINO (``mode``: ``onnxruntime``, ``openvino``,
    ``openvino-bf16``): normalise, pad, the graph, top-k, back to the
    image, on the same resized images as the PyTorch rows' ``test_step``;
    ``latency_only`` as in :func:`measure`."""
    import mmcv
    import torch

    from querypose_mm.deployment import build_runtime
    backend, _, precision = mode.partition('-')
    runtime = build_runtime(onnx_file, backend, precision or 'f32')
    samples = load_inputs(short_side, max_size, max(batch_size, 1))
    images = [
        sample['inputs'].permute(1, 2, 0).numpy().copy() for sample in samples
    ]
    name = entry.split('@')[0]
    latency = time_calls(
        lambda: runtime(images[0]),
        runs,
        warmup,
        sub_label=name,
        description=mode)
    if latency_only:
        return dict(
            model=entry,
            **latency_figures(latency),
            threads=torch.get_num_threads())
    # a batch of one input shape, as the runtime batches
    batch = [images[0]] * batch_size
    batch_times = latency if batch_size == 1 else time_calls(
        lambda: runtime(batch), max(runs // 2, 1), 1)
    if backend == 'openvino':
        import openvino
        version = dict(openvino=openvino.__version__)
    else:
        import onnxruntime
        version = dict(onnxruntime=onnxruntime.__version__)
    return dict(
        model=entry,
        description=f'{SPECS[name].description}, {backend} '
        f'{precision or "f32"}',
        **exported,
        **latency_figures(latency),
        throughput_img_s=batch_size / float(np.median(batch_times)),
        throughput_batch=batch_size,
        peak_mem_mb=peak_memory_mb('cpu'),
        input_hw=tuple(runtime.preprocess(images[0])[0].shape[-2:]),
        device='cpu',
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        threads=torch.get_num_threads(),
        **version,
        mode=mode)


def measure(name: str,
            short_side: int = 800,
            max_size: int = 1333,
            runs: int = 10,
            warmup: int = 2,
            batch_size: int = 2,
            device: str = 'cpu',
            mode: str = 'fp32',
            with_train_step: bool = False,
            latency_only: bool = False) -> dict:
    """Every figure of one model in a PyTorch ``mode`` (``fp32``,
    ``autocast``: ``torch.autocast``, bf16 on the CPU and fp16 on CUDA, as
    mmengine's ``test_cfg=dict(fp16=True)``; ``channels-last``; ``bf16``:
    QueryPose's ``test_cfg.precision='bf16'``): params (M), GMACs of one
    forward at the input, latency at batch 1 (median, p90 over ``runs``),
    throughput at ``batch_size``, peak memory; for QueryPose the time per
    module group and, with ``with_train_step``, the training iteration.
    ``latency_only`` measures the latency alone (a later round)."""
    import mmcv
    import torch
    spec = SPECS[name]
    test_cfg = dict(precision='bf16') if mode == 'bf16' else {}
    model, _ = build_model(name, device, test_cfg)
    if mode == 'channels-last':
        model.to(memory_format=torch.channels_last)
    samples = load_inputs(short_side, max_size, max(batch_size, 1))
    single = as_batch(samples[:1])
    batch_size = min(batch_size, spec.max_batch or batch_size)
    batched = as_batch(samples[:batch_size])
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    dtype = torch.float16 if device.startswith('cuda') else torch.bfloat16

    def precision():
        return torch.autocast(
            device_type=device.split(':')[0],
            dtype=dtype,
            enabled=mode == 'autocast')

    decoded = []
    if spec.decoded_queries:
        model.test_cfg['score_thr'] = score_thr_for(model, single,
                                                    spec.decoded_queries,
                                                    precision)
        # what the timed steps decode, counted at the last stage
        model.head.keypoint_decoders[-1].register_forward_hook(
            lambda _m, args, _out: decoded.append(args[0].shape[0]))

    with torch.no_grad(), precision():
        latency = time_calls(
            lambda: model.test_step(single),
            runs,
            warmup,
            sub_label=name,
            description=mode)
        batch_times = latency if batch_size == 1 or latency_only else \
            time_calls(lambda: model.test_step(batched), max(runs // 2, 1), 1)
    result = dict(
        model=name,
        description=spec.description,
        **latency_figures(latency),
        input_hw=tuple(single['inputs'][0].shape[-2:]),
        threads=torch.get_num_threads(),
        decoded_queries=decoded[-1] if decoded else None)
    if latency_only:
        return result
    result.update(
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        gmacs=count_macs(model, single, precision) / 1e9,
        throughput_img_s=batch_size / float(np.median(batch_times)),
        throughput_batch=batch_size,
        peak_mem_mb=peak_memory_mb(device),
        device=torch.cuda.get_device_name()
        if device.startswith('cuda') else device,
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        channels_last=mode == 'channels-last',
        autocast=str(dtype).replace('torch.', '')
        if mode == 'autocast' else 'off')
    if spec.is_querypose:
        result['breakdown_ms'] = module_breakdown(model, single, device,
                                                  max(runs // 2, 1), precision)
        if with_train_step:
            result['train_step'] = train_step(name, short_side, max_size,
                                              batch_size, runs, warmup, device)
    return result
