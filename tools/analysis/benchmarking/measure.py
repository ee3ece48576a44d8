"""One benchmark row: latency (``torch.utils.benchmark``), throughput, peak
memory and the model's other figures, measured in the calling process
(``tools/analysis/benchmark.py`` calls :func:`measure` in a fresh one per
row, so that each peak-memory figure is its own)."""
import os.path as osp
import resource
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from importlib import import_module
from typing import Callable, ContextManager, List, Optional

import mmcv
import numpy as np
import torch

from .models import (MODES, REPO_ROOT, SPECS, Mode, as_batch, build_model,
                     load_inputs, split_entry)
from .profiling import count_macs, module_breakdown


@dataclass(frozen=True)
class Settings:
    """What every row of a run is measured at (the command line's options).

    Attributes:
        short_side (int): Of the resized input images.
        max_size (int): Their longest side at most.
        runs (int): Timed calls at batch 1.
        warmup (int): Untimed calls before them.
        batch_size (int): Of the throughput and the training step.
        device (str): Of the PyTorch rows (the runtime rows use the CPU).
        threads (int, optional): torch's CPU threads (torch's choice if
            None).
        train_step (bool): Also time QueryPose's training iterations.
    """
    short_side: int
    max_size: int
    runs: int
    warmup: int
    batch_size: int
    device: str
    threads: Optional[int]
    train_step: bool


@dataclass(frozen=True)
class ExportedModel:
    """A model exported for the runtime rows, with the figures of the
    PyTorch model it came from.

    Attributes:
        onnx_file (str): The exported file.
        params_m (float): Parameters (M).
        gmacs (float): GMACs of one ``test_step`` at the benchmark's input.
    """
    onnx_file: str
    params_m: float
    gmacs: float


@dataclass(frozen=True)
class _Subject:
    """What :func:`measure` times, a PyTorch model or an exported one.

    Attributes:
        description (str): The row's description.
        device (str): Where it runs.
        run_single (Callable): One inference on one image.
        run_batch (Callable): One inference on ``batch_size`` images.
        batch_size (int): Of ``run_batch`` (a model may take fewer images
            than asked).
        input_hw (tuple): The network input of ``run_single``.
        context (Callable): The context the timed calls run in.
        figures (Callable): The row's other figures, read after the timing.
    """
    description: str
    device: str
    run_single: Callable[[], object]
    run_batch: Callable[[], object]
    batch_size: int
    input_hw: tuple
    context: Callable[[], ContextManager]
    figures: Callable[[], dict]


def time_calls(fn: Callable[[], object], runs: int,
               warmup: int) -> List[float]:
    """Seconds of each of ``runs`` calls of ``fn`` after ``warmup`` calls,
    an accelerator synchronised around each. (``torch.utils.benchmark.
    Timer.timeit(1)`` would add two warm-up calls to every timed one.)"""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (
        lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def latency_figures(latency: List[float]) -> dict:
    """Median, p90 and every run of ``latency`` (seconds), in ms."""
    return dict(
        latency_ms_median=1000 * float(np.median(latency)),
        latency_runs_ms=[1000 * t for t in latency],
        latency_ms_p90=1000 * float(np.percentile(latency, 90)))


def peak_memory_mb(device: str) -> float:
    """Peak RSS of this process, or the peak CUDA allocation."""
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_step(name: str, settings: Settings) -> List[dict]:
    """QueryPose training iterations at ``settings.batch_size``, with and
    without autocast (fp16 on CUDA, bf16 on the CPU): median s/iter, peak
    memory."""
    from mmengine.optim import build_optim_wrapper

    from mmpose.datasets import CocoDataset
    device = settings.device
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
                scales=settings.short_side,
                max_size=settings.max_size),
            dict(type='PackPoseInputs')
        ])
    batch = as_batch(
        [dataset[i % len(dataset)] for i in range(settings.batch_size)])
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
                           settings.runs, settings.warmup)
        results.append(
            dict(
                amp=label,
                batch_size=settings.batch_size,
                iter_s_median=float(np.median(times)),
                peak_mem_mb=peak_memory_mb(device)))
    return results


def score_thr_for(model,
                  batch: dict,
                  num_decoded: int,
                  precision=nullcontext) -> float:
    """The ``test_cfg.score_thr`` at which each image of ``batch`` decodes
    the keypoints of at least ``num_decoded`` queries (exactly that many
    for one image): the smallest, over the images, of the
    ``num_decoded``-th largest final class probability, read from the
    model's own ``test_step`` (its precision) by a hook on the last box
    decoder."""
    final_cls = []
    handle = model.head.box_decoders[-1].register_forward_hook(
        lambda _module, _args, out: final_cls.append(out[0]))
    # a threshold no query reaches: the box stages alone
    model.update_test_cfg(score_thr=1.0)
    try:
        with torch.no_grad(), precision():
            model.test_step(batch)
    finally:
        handle.remove()
    probs = final_cls[-1].view(len(batch['inputs']), -1).sigmoid()
    return probs.topk(num_decoded, dim=1).values[:, -1].min().item()


def _use_threads(settings: Settings) -> None:
    if settings.threads:
        torch.set_num_threads(settings.threads)


def export_for_benchmark(name: str, onnx_file: str,
                         settings: Settings) -> ExportedModel:
    """Export ``SPECS[name]`` (random weights) with a dynamic input to
    ``onnx_file`` for the runtime rows of :func:`measure`."""
    from querypose_mm.deployment import export_onnx
    _use_threads(settings)
    model, cfg = build_model(name, 'cpu')
    single = as_batch(load_inputs(settings.short_side, settings.max_size, 1))
    resize = [
        t for t in cfg.test_dataloader.dataset.pipeline
        if t['type'] == 'RandomShortSideResize'
    ][0]
    resize.update(scales=settings.short_side, max_size=settings.max_size)
    # timing only: random weights can make the comparison with PyTorch
    # meaningless (docs/deployment.md)
    export_onnx(model, cfg, onnx_file, dynamic=True, verify=False)
    return ExportedModel(
        onnx_file,
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        gmacs=count_macs(model, single) / 1e9)


def _pytorch_subject(name: str, mode: Mode, settings: Settings) -> _Subject:
    """``SPECS[name]`` in a PyTorch ``mode``, on ``settings.device``; its
    figures: params, GMACs, the mode's settings, for QueryPose the time
    per module group and, with ``settings.train_step``, the training
    iteration."""
    spec, device = SPECS[name], settings.device
    model, _ = build_model(name, device, mode.test_cfg)
    if mode.channels_last:
        model.to(memory_format=torch.channels_last)
    samples = load_inputs(settings.short_side, settings.max_size,
                          settings.batch_size)
    single = as_batch(samples[:1])
    batch_size = min(settings.batch_size, spec.max_batch
                     or settings.batch_size)
    batched = as_batch(samples[:batch_size])
    amp_dtype = torch.float16 if device.startswith('cuda') else torch.bfloat16

    def precision():
        return torch.autocast(
            device_type=device.split(':')[0],
            dtype=amp_dtype,
            enabled=mode.autocast)

    @contextmanager
    def inference():
        with torch.no_grad(), precision():
            yield

    decoded = []
    if spec.decoded_queries:
        model.update_test_cfg(
            score_thr=score_thr_for(model, single, spec.decoded_queries,
                                    precision))
        # what the timed steps decode, counted at the last stage
        model.head.keypoint_decoders[-1].register_forward_hook(
            lambda _m, args, _out: decoded.append(args[0].shape[0]))

    def figures() -> dict:
        result = dict(
            # the first step after the threshold was set is at batch 1, as
            # every latency step (the batched ones count all their images)
            decoded_queries=decoded[0] if decoded else None,
            params_m=sum(p.numel() for p in model.parameters()) / 1e6,
            gmacs=count_macs(model, single, precision) / 1e9,
            channels_last=mode.channels_last,
            autocast=str(amp_dtype).replace('torch.', '')
            if mode.autocast else 'off')
        if spec.is_querypose:
            result['breakdown_ms'] = module_breakdown(
                model, single, device, max(settings.runs // 2, 1), precision)
            if settings.train_step:
                result['train_step'] = train_step(name, settings)
        return result

    return _Subject(
        description=spec.description,
        device=device,
        run_single=lambda: model.test_step(single),
        run_batch=lambda: model.test_step(batched),
        batch_size=batch_size,
        input_hw=tuple(single['inputs'][0].shape[-2:]),
        context=inference,
        figures=figures)


def _runtime_subject(name: str, mode: Mode, settings: Settings,
                     exported: ExportedModel) -> _Subject:
    """The exported ``SPECS[name]`` in ONNX Runtime or OpenVINO, on the CPU:
    normalise, pad, the graph, top-k, back to the image, on the same
    resized image as the PyTorch rows' ``test_step``; its figures: the
    PyTorch model's params and GMACs, the runtime's version."""
    from querypose_mm.deployment import build_runtime
    runtime = build_runtime(exported.onnx_file, mode.runtime, mode.precision)
    sample = load_inputs(settings.short_side, settings.max_size, 1)[0]
    image = sample['inputs'].permute(1, 2, 0).numpy().copy()
    # a batch of one input shape, as the runtime batches
    batch = [image] * settings.batch_size
    return _Subject(
        description=f'{SPECS[name].description}, {mode.runtime} '
        f'{mode.precision}',
        device='cpu',
        run_single=lambda: runtime(image),
        run_batch=lambda: runtime(batch),
        batch_size=settings.batch_size,
        input_hw=tuple(runtime.preprocess(image)[0].shape[-2:]),
        context=nullcontext,
        figures=lambda: {
            'params_m': exported.params_m,
            'gmacs': exported.gmacs,
            mode.runtime: import_module(mode.runtime).__version__
        })


def measure(entry: str,
            settings: Settings,
            latency_only: bool = False,
            exported: Optional[ExportedModel] = None) -> dict:
    """The row of ``entry`` (``NAME@MODE``, see :data:`.models.MODES`).

    Args:
        entry (str): The model and its mode.
        settings (Settings): What to measure at.
        latency_only (bool): Measure the batch-1 latency alone (a later
            round of the same row).
        exported (ExportedModel, optional): The model exported by
            :func:`export_for_benchmark`, for a runtime mode.

    Returns:
        dict: ``model``, ``mode``, ``description``, the latency at batch 1
        in ms (``latency_ms_median``, ``latency_ms_p90``,
        ``latency_runs_ms``), ``input_hw``, ``threads``; unless
        ``latency_only``, the throughput (images/s) at
        ``throughput_batch``, ``peak_mem_mb`` (RSS on the CPU,
        ``max_memory_allocated`` on CUDA), ``device``, the versions,
        ``params_m``, ``gmacs`` and the mode's own figures.
    """
    name, mode_name = split_entry(entry)
    mode = MODES[mode_name]
    _use_threads(settings)
    if mode.runtime:
        subject = _runtime_subject(name, mode, settings, exported)
    else:
        subject = _pytorch_subject(name, mode, settings)
    on_cuda = subject.device.startswith('cuda')
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    with subject.context():
        latency = time_calls(subject.run_single, settings.runs,
                             settings.warmup)
        if latency_only or subject.batch_size == 1:
            batch_times = latency
        else:
            batch_times = time_calls(subject.run_batch,
                                     max(settings.runs // 2, 1), 1)
    row = dict(
        model=entry,
        mode=mode.name,
        description=subject.description,
        **latency_figures(latency),
        input_hw=subject.input_hw,
        threads=torch.get_num_threads())
    if latency_only:
        return row
    row.update(
        throughput_img_s=subject.batch_size / float(np.median(batch_times)),
        throughput_batch=subject.batch_size,
        peak_mem_mb=peak_memory_mb(subject.device),
        device=torch.cuda.get_device_name() if on_cuda else subject.device,
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        **subject.figures())
    return row
