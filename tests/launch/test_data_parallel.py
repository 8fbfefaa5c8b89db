"""Two processes (gloo, DDP) at batch b compute the gradient of one process at batch 2b: the
contrastive losses of ConVIRT and GLoRIA see the negatives of every rank (syncxr.launch.data_parallel).

The towers run in eval mode (no dropout, batch norm on running statistics), so each sample's
features do not depend on who else is in its batch; only the losses couple the samples, which is
what is tested. The models themselves are in training mode (that is when they gather)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from syncxr.launch.data_parallel import gather_rows, parameter_digest, world_size
from syncxr.models.convirt import ConVIRT
from syncxr.models.gloria import GLoRIA
from syncxr.models.image_encoder import build_image_encoder
from tests.helpers import model_settings, text_encoder

pytestmark = pytest.mark.slow
BATCH = 8  # the whole batch; each of the two ranks takes half
CAPTIONS = [
    "small left pleural effusion",
    "no pneumothorax",
    "heart size is enlarged",
    "right lower lobe consolidation",
    "normal chest",
    "mild pulmonary edema",
    "nodule in the right upper lobe",
    "left basilar atelectasis",
]


def _models(text_path: str) -> dict:
    torch.manual_seed(0)
    out = {
        "convirt": ConVIRT(
            build_image_encoder("resnet18", None, None, None, False),
            text_encoder(text_path),
            **model_settings("convirt", proj_dim=16, proj_hidden=32),
        ),
        "gloria": GLoRIA(
            build_image_encoder("resnet18", None, None, None, False),
            text_encoder(text_path),
            **model_settings("gloria", embed_dim=16),
        ),
    }
    for m in out.values():
        m.train()  # the model gathers in training mode ...
        m.image_encoder.eval()  # ... its towers compute each sample alone
        m.text_encoder.eval()
    return out


def _inputs(text_path: str):
    tok = text_encoder(text_path).tokenizer(
        CAPTIONS, padding="max_length", max_length=16, truncation=True, return_tensors="pt"
    )
    images = torch.randn(BATCH, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    return images, tok["input_ids"], tok["attention_mask"]


def _loss_and_grads(model, images, ids, mask) -> dict[str, torch.Tensor]:
    loss = model(images, ids, mask)["loss"]
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return {"loss": loss.detach().reshape(1), **grads}


def _rank(rank: int, port: int, text_path: str, out_dir: str):
    import torch.distributed as dist  # noqa: PLC0415
    from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: PLC0415

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        images, ids, mask = _inputs(text_path)
        half = slice(rank * BATCH // 2, (rank + 1) * BATCH // 2)
        for name, model in _models(text_path).items():
            ddp = DDP(model, find_unused_parameters=True)
            out = _loss_and_grads(ddp, images[half], ids[half], mask[half])
            out = {k.removeprefix("module."): v for k, v in out.items()}
            save_file(out, os.path.join(out_dir, f"{name}_rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_two(fn, *args) -> None:
    """fn(rank, *args) in two processes forked from this one: they inherit its imports (a spawned
    process spends seconds importing torch again) and, under xdist, its one torch thread."""
    mp.start_processes(fn, args=args, nprocs=2, join=True, start_method="fork")


def _two_ranks(tiny_text_path, out_dir) -> dict[str, list[dict]]:
    _start_two(_rank, _free_port(), tiny_text_path, str(out_dir))
    return {
        name: [load_file(out_dir / f"{name}_rank{r}.safetensors") for r in (0, 1)] for name in ("convirt", "gloria")
    }


def test_two_ranks_at_batch_b_have_the_gradient_of_one_process_at_2b(tiny_text_path, tmp_path):
    ranks = _two_ranks(tiny_text_path, tmp_path)
    images, ids, mask = _inputs(tiny_text_path)
    for name, model in _models(tiny_text_path).items():
        ref = _loss_and_grads(model, images, ids, mask)  # one process, the whole batch
        for r, got in enumerate(ranks[name]):
            # Every rank computed the loss of the whole batch, and DDP left every rank the
            # single-process gradient.
            assert torch.allclose(got["loss"], ref["loss"], rtol=1e-5), (name, r, got["loss"], ref["loss"])
            assert set(got) == set(ref), (name, set(got) ^ set(ref))
            for k in ref:  # float rounding only: summation orders differ (~1e-6 of the largest entry)
                err, scale = float((got[k] - ref[k]).abs().max()), float(ref[k].abs().max())
                assert err <= 1e-5 * scale + 1e-7, (name, r, k, err, scale)
        # The control: with only its own half's negatives (no gather) a rank has another loss.
        local = [_loss_and_grads(model, images[h], ids[h], mask[h])["loss"] for h in (slice(0, 4), slice(4, 8))]
        assert abs(float(sum(local) / 2 - ref["loss"])) > 0.05, (name, local, ref["loss"])


ROWS = {"equal": (4, 4), "unequal": (3, 5)}  # rows per rank (unequal: GLoRIA's packed words, a skipped image)


def _rows_loss(y: torch.Tensor) -> torch.Tensor:
    """A loss that couples every row with every other (as the contrastive losses do)."""
    return (y @ y.t()).logsumexp(1).mul(torch.arange(1.0, len(y) + 1)).sum()


def _gather_rank(rank: int, port: int, out_dir: str):
    import torch.distributed as dist  # noqa: PLC0415

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        for case, rows in ROWS.items():
            x = torch.randn(rows[rank], 6, generator=torch.Generator().manual_seed(rank)).requires_grad_()
            y = gather_rows(x * 1.0)  # a temporary as input, as the models pass it
            # Complete when returned: a plain tensor, not a wrapper whose collective may still be in flight.
            assert type(y) is torch.Tensor, (case, type(y))
            _rows_loss(y).backward()
            out = {"x": x.detach(), "y": y.detach(), "grad": x.grad}
            save_file(out, os.path.join(out_dir, f"{case}_rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


def test_gather_rows_is_the_single_process_concatenation(tmp_path):
    """Forward: the rows of every rank in rank order; backward: each rank gets the gradient of its
    rows summed over the ranks (here twice the single-process gradient, as both ranks compute the
    same loss; DDP's mean over ranks then gives the single-process gradient)."""
    _start_two(_gather_rank, _free_port(), str(tmp_path))
    for case, rows in ROWS.items():
        ranks = [load_file(tmp_path / f"{case}_rank{r}.safetensors") for r in (0, 1)]
        whole = torch.cat([r["x"] for r in ranks]).requires_grad_()
        _rows_loss(whole).backward()
        for r, got in enumerate(ranks):
            assert torch.equal(got["y"], whole.detach()), (case, r)
            mine = whole.grad[sum(rows[:r]) : sum(rows[: r + 1])]
            assert torch.allclose(got["grad"], 2 * mine, rtol=1e-5, atol=1e-6), (case, r, got["grad"], mine)


def test_one_process_is_left_alone():
    x = torch.randn(3, 2, requires_grad=True)
    assert world_size() == 1 and gather_rows(x) is x
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(parameter_digest(a), parameter_digest(b))
    with torch.no_grad():
        b.weight[0, 0] += 1e-6
    assert not torch.equal(parameter_digest(a), parameter_digest(b))
