"""Timing, MACs, memory and the per-module breakdown of one model."""
import os.path as osp
import resource
import time
from collections import defaultdict
from typing import Callable, Dict, List

import numpy as np

from .models import REPO_ROOT, SPECS, as_batch, build_model, load_inputs


def synchronize(device: str) -> None:
    import torch
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_calls(fn: Callable[[], object], runs: int, warmup: int,
               device: str) -> List[float]:
    """Seconds of each of ``runs`` calls of ``fn`` after ``warmup``."""
    times = []
    for i in range(warmup + runs):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


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
            kd.coord_head, kd.sigma_head, kd.instance_to_part
        ]
        if kd.update_instance_query:
            groups['Q_I update (Fig. 3b)'] += [
                kd.instance_conv, kd.instance_conv_norm, kd.instance_ffn,
                kd.instance_ffn_norm
            ]
    return groups


def module_breakdown(model, batch, device: str, runs: int) -> Dict[str, float]:
    """Mean milliseconds per module group over ``runs`` test steps."""
    import torch
    spent = defaultdict(float)
    handles = []
    for group, modules in module_groups(model).items():
        for module in modules:
            starts = []

            def pre(_module, _args, starts=starts):
                synchronize(device)
                starts.append(time.perf_counter())

            def post(_module, _args, _out, starts=starts, group=group):
                synchronize(device)
                spent[group] += time.perf_counter() - starts.pop()

            handles += [
                module.register_forward_pre_hook(pre),
                module.register_forward_hook(post)
            ]
    with torch.no_grad():
        total = sum(
            time_calls(lambda: model.test_step(batch), runs, 0, device))
    for handle in handles:
        handle.remove()
    result = {k: 1000 * v / runs for k, v in spent.items()}
    result['other (preprocess, top-k, decode)'] = 1000 * total / runs - sum(
        result.values())
    return result


def count_macs(model, batch) -> float:
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
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
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
        times = time_calls(lambda: model.train_step(batch, optim_wrapper),
                           runs, warmup, device)
        results.append(
            dict(
                amp=label,
                batch_size=batch_size,
                iter_s_median=float(np.median(times)),
                peak_mem_mb=peak_memory_mb(device)))
    return results


def export_for_benchmark(name: str, onnx_file: str, short_side: int,
                         max_size: int) -> dict:
    """Export ``SPECS[name]`` (random weights) with a dynamic input for
    :func:`measure_onnxruntime`; returns its params and GMACs, which are the
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


def measure_onnxruntime(name: str, onnx_file: str, exported: dict,
                        short_side: int, max_size: int, runs: int,
                        warmup: int) -> dict:
    """Latency and peak RSS of :class:`QueryPoseOnnxRuntime` (normalise, pad,
    ONNX Runtime, top-k, back to the image) on the same resized image as
    the PyTorch rows' ``test_step``."""
    import mmcv
    import onnxruntime
    import torch

    from querypose_mm.deployment import QueryPoseOnnxRuntime
    runtime = QueryPoseOnnxRuntime(onnx_file)
    sample = load_inputs(short_side, max_size, 1)[0]
    image = sample['inputs'].permute(1, 2, 0).numpy().copy()
    latency = time_calls(lambda: runtime(image), runs, warmup, 'cpu')
    return dict(
        model=name,
        description=SPECS[name.split('@')[0]].description + ', ONNX Runtime',
        **exported,
        latency_ms_median=1000 * float(np.median(latency)),
        latency_ms_p90=1000 * float(np.percentile(latency, 90)),
        throughput_img_s=None,
        throughput_batch=None,
        peak_mem_mb=peak_memory_mb('cpu'),
        input_hw=tuple(runtime.preprocess(image)[0].shape[-2:]),
        device='cpu',
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        threads=torch.get_num_threads(),
        onnxruntime=onnxruntime.__version__,
        mode='onnxruntime')


def measure(name: str,
            short_side: int = 800,
            max_size: int = 1333,
            runs: int = 10,
            warmup: int = 2,
            batch_size: int = 2,
            device: str = 'cpu',
            channels_last: bool = False,
            with_train_step: bool = False,
            autocast: bool = False) -> dict:
    """Every figure of one model: params (M), GMACs of one forward at the
    input, latency at batch 1 (median, p90 over ``runs``), throughput at
    ``batch_size``, peak memory; for QueryPose the time per module group
    and, with ``with_train_step``, the training iteration. ``autocast``
    runs inference under ``torch.autocast`` (bfloat16 on the CPU, float16
    on CUDA), as mmengine's ``test_cfg=dict(fp16=True)`` does."""
    import mmcv
    import torch
    spec = SPECS[name]
    model, _ = build_model(name, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    samples = load_inputs(short_side, max_size, max(batch_size, 1))
    single = as_batch(samples[:1])
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    dtype = torch.float16 if device.startswith('cuda') else torch.bfloat16
    precision = torch.autocast(
        device_type=device.split(':')[0], dtype=dtype, enabled=autocast)
    with torch.no_grad(), precision:
        latency = time_calls(lambda: model.test_step(single), runs, warmup,
                             device)
        batch_size = min(batch_size, spec.max_batch or batch_size)
        batched = as_batch(samples[:batch_size])
        batch_times = time_calls(lambda: model.test_step(batched),
                                 max(runs // 2, 1), 1, device)
    result = dict(
        model=name,
        description=spec.description,
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        gmacs=count_macs(model, single) / 1e9,
        latency_ms_median=1000 * float(np.median(latency)),
        latency_ms_p90=1000 * float(np.percentile(latency, 90)),
        throughput_img_s=batch_size / float(np.median(batch_times)),
        throughput_batch=batch_size,
        peak_mem_mb=peak_memory_mb(device),
        input_hw=tuple(single['inputs'][0].shape[-2:]),
        device=torch.cuda.get_device_name()
        if device.startswith('cuda') else device,
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        threads=torch.get_num_threads(),
        channels_last=channels_last,
        autocast=str(dtype).replace('torch.', '') if autocast else 'off')
    if spec.is_querypose:
        with precision:
            result['breakdown_ms'] = module_breakdown(model, single, device,
                                                      max(runs // 2, 1))
        if with_train_step:
            result['train_step'] = train_step(name, short_side, max_size,
                                              batch_size, runs, warmup, device)
    return result
