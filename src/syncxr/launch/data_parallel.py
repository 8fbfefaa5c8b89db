"""One model trained by several processes (DDP, one per GPU): what makes W processes at batch b
train as one process at batch W*b.

- Contrastive negatives from every rank: `gather_rows` concatenates a batch's features over the
  ranks with gradient (as open_clip's gather_with_grad), so every rank computes the loss of the
  whole W*b batch. The backward pass of the gather sums, on each rank, the gradients of its own rows
  over the W (identical) losses; DDP's mean over ranks then gives exactly the gradient of the
  single-process loss at batch W*b.
- Batch statistics over every rank: `sync_batchnorm` (torch's SyncBatchNorm, GPUs only).
- A check that the replicas stayed identical: `parameter_digest`.

Outside a process group (one process) everything here is the identity.
"""

from __future__ import annotations

import hashlib
import logging

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)


def world_size() -> int:
    """Processes in the default group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """The rows of `x` (n x ...) of every rank, in rank order, differentiable: the gradient of each
    rank's rows is summed over the ranks and sent back to it. Every rank must call it; the number of
    rows may differ between ranks (GLoRIA's packed words, a batch short of a skipped image)."""
    if world_size() == 1:
        return x
    n = torch.tensor([len(x)], device=x.device)
    counts = [torch.empty_like(n) for _ in range(world_size())]
    dist.all_gather(counts, n)
    return _GatherRows.apply(x, [int(c) for c in counts])


class _GatherRows(torch.autograd.Function):
    """All-gather with a backward pass, through torch.distributed's public, blocking collectives:
    the rows are complete when returned. (torch's private functional collectives, used before, hand
    back a wrapper whose gloo collective may still be in flight and is waited for on first use.)
    gloo needs equal shapes: each rank sends its rows padded to the longest; the padding is cut off."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, counts: list[int]) -> torch.Tensor:
        ctx.counts, ctx.rank = counts, dist.get_rank()
        longest = max(counts)
        padded = torch.cat([x, x.new_zeros((longest - len(x), *x.shape[1:]))]) if len(x) < longest else x
        parts = [x.new_empty(padded.shape) for _ in counts]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:c] for p, c in zip(parts, counts)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # Every rank's loss depends on every row: sum the gradients of all ranks (an all-reduce of
        # a private copy, as autograd may still hold `grad`), then keep this rank's rows.
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        start = sum(ctx.counts[: ctx.rank])
        return total[start : start + ctx.counts[ctx.rank]], None


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers that normalise with the statistics of the whole W*b batch (several
    processes on GPUs). torch's SyncBatchNorm has GPU kernels only: on the CPU (the gloo backend)
    the model is returned unchanged and each process normalises over its own b images."""
    if world_size() == 1 or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    if device.type != "cuda":
        log.warning(
            "trainer.sync_batchnorm: torch's SyncBatchNorm needs GPUs; on %s each of the %d processes "
            "computes batch-norm statistics over its own batch",
            device.type,
            world_size(),
        )
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def plain_batchnorm(model: nn.Module) -> nn.Module:
    """Undoes `sync_batchnorm` in place (same parameters and running statistics): the model the
    main process evaluates alone must not wait for the others inside a forward pass."""
    for name, child in model.named_children():
        if isinstance(child, nn.SyncBatchNorm):
            plain = nn.BatchNorm2d(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
                device=_device_of(child),
            )
            plain.load_state_dict(child.state_dict())
            if child.affine:  # the very Parameter objects: an optimizer holding them still sees them
                plain.weight, plain.bias = child.weight, child.bias
            plain.train(child.training)
            setattr(model, name, plain)
        else:
            plain_batchnorm(child)
    return model


def _device_of(module: nn.Module) -> torch.device | None:
    tensors = [*module.parameters(), *module.buffers()]
    return tensors[0].device if tensors else None


def parameter_digest(model: nn.Module) -> torch.Tensor:
    """SHA-256 of every parameter's bytes, in order, as a uint8 tensor of 32 (on the CPU).
    Replicas that DDP kept in step have identical digests; buffers (batch-norm running statistics,
    which each process updates from its own batch between DDP's broadcasts) are left out."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return torch.tensor(list(h.digest()), dtype=torch.uint8)
