"""What one ``test_step`` costs: MACs (``FlopCounterMode``) and the time per
module group (``torch.profiler``)."""
from collections import defaultdict
from contextlib import nullcontext
from typing import Dict, List, Sequence

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

# the ops that only change a tensor's dtype or memory layout
CONVERSION_OPS = ('aten::to', 'aten::_to_copy', 'aten::copy_',
                  'aten::contiguous', 'aten::clone')
# the module paths whose children are timed apart: the estimator's parts,
# the head's, and the layers of the keypoint decoders, where most of
# QueryPose's time goes; every other child is timed as a whole
SPLIT_PATHS = ('', 'head', 'head.keypoint_decoders')
OTHER = 'other (outside the groups: top-k, decoding)'
CONVERSION_TIME = 'dtype/layout conversions (within the above)'
CONVERSION_COUNT = 'conversion ops per step'


def module_groups(
        model: nn.Module,
        split: Sequence[str] = SPLIT_PATHS) -> Dict[str, List[nn.Module]]:
    """The modules of ``model`` by group, read from its module tree.

    Each child of a path in ``split`` is a group named by its path (e.g.
    ``'neck'``, ``'head.box_decoders'``,
    ``'head.keypoint_decoders.conv_stack'``); the stages of a
    ``ModuleList`` (which is never called itself) fall into one group.

    Args:
        model (nn.Module): The estimator.
        split (Sequence[str]): Module paths (``''``: ``model``) whose
            children are groups of their own; a path below one is split
            again only if it is listed too.

    Returns:
        dict[str, list[nn.Module]]: Path -> the modules to time as one.
    """
    groups = defaultdict(list)

    def visit(path: str, module: nn.Module) -> None:
        if path not in split:
            groups[path].append(module)
            return
        for name, child in module.named_children():
            child_path = f'{path}.{name}' if path else name
            stages = child if isinstance(child, nn.ModuleList) else [child]
            for stage in stages:
                visit(child_path, stage)

    visit('', model)
    return dict(groups)


def _mark_groups(groups: Dict[str, List[nn.Module]]) -> list:
    """Hooks that open a ``record_function`` range named after its group
    around each call of a module of ``groups``; returns the handles."""
    handles = []
    for group, modules in groups.items():
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


def module_breakdown(model: nn.Module,
                     batch: dict,
                     device: str,
                     runs: int,
                     precision=nullcontext) -> Dict[str, float]:
    """Mean milliseconds per module group (:func:`module_groups`) over
    ``runs`` test steps, from ``torch.profiler`` (CPU time, or the
    accelerator's on CUDA), the rest of the step (:data:`OTHER`), and the
    time and count of the dtype/layout conversion ops
    (:data:`CONVERSION_OPS`) anywhere in the step."""
    activities = [ProfilerActivity.CPU]
    if device.startswith('cuda'):
        activities.append(ProfilerActivity.CUDA)
    groups = module_groups(model)
    handles = _mark_groups(groups)
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
    # a group that did not run (the training criterion) has no event
    result = {
        group: getattr(events[group], attr) / 1000 / runs
        for group in groups if group in events
    }
    total = getattr(events['test_step'], attr) / 1000 / runs
    result[OTHER] = total - sum(result.values())
    conversions = [events[op] for op in CONVERSION_OPS if op in events]
    result[CONVERSION_TIME] = sum(event.self_cpu_time_total
                                  for event in conversions) / 1000 / runs
    result[CONVERSION_COUNT] = sum(event.count for event in conversions) / runs
    return result


def count_macs(model: nn.Module, batch: dict, precision=nullcontext) -> float:
    """Multiply-adds of one ``test_step`` (convolutions, matrix products),
    by ``torch.utils.flop_counter.FlopCounterMode``."""
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
