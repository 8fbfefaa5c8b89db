"""The one Accelerator of a job (training or evaluation): device, mixed precision, process group."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs

from ..config_choices import PRECISIONS
from .distributed import export_distributed_env


def build_accelerator(precision: str, cpu: bool, log_with: str | None = None, key: str = "precision") -> Accelerator:
    """`precision`: no | bf16 | fp16 (fp16 needs a GPU); `cpu`: stay on the CPU even with a GPU.
    Under submitit/SLURM with one task per GPU the tasks join one process group first."""
    precision = str(precision)
    if precision not in PRECISIONS:
        raise ValueError(f"{key} must be one of {PRECISIONS}, got {precision!r}")
    cpu = bool(cpu) or not torch.cuda.is_available()
    if precision == "fp16" and cpu:
        raise ValueError(f"{key}=fp16 needs a GPU; use bf16 or no on the CPU")
    export_distributed_env()  # one task per GPU under submitit/SLURM: join them (no-op elsewhere)
    # Under DDP (several processes) parameters without a gradient, such as BERT's unused pooler,
    # must be allowed, or the second step fails.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(mixed_precision=precision, cpu=cpu, log_with=log_with, kwargs_handlers=[ddp])
