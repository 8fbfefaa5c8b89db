"""Optimizer and learning-rate schedule from their config sections (`_partial_` targets)."""

from __future__ import annotations

import inspect

from hydra.utils import instantiate


def build_optimizer(opt_cfg, params):
    return instantiate(opt_cfg)(params)


def build_scheduler(sched_cfg, optimizer, total_steps: int):
    """The schedule, told the run's number of optimizer steps where it asks for them."""
    if sched_cfg is None:
        return None
    factory = instantiate(sched_cfg)
    if "num_training_steps" in inspect.signature(factory.func).parameters:
        return factory(optimizer, num_training_steps=total_steps)
    return factory(optimizer)
