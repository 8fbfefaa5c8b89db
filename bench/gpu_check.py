"""What a GPU changes: one short script to run where GPUs are (it runs on the CPU too, with --tiny).

  python bench/gpu_check.py [--out gpu_check.json] [--workers 8] [--steps 20]
  python bench/gpu_check.py --tiny      # the same code paths on the CPU, in seconds

1. Training step, bf16, at the paper's settings: ConVIRT (experiment=convirt_paper: ResNet-50 at
   224 px, batch 32) and GLoRIA (experiment=gloria_paper: 224 px upsampled to 299 inside the model,
   batch 48), each with a BERT-base text tower of random weights built offline (Bio_ClinicalBERT's
   shape; its weights cannot be fetched here). Batches come from the real collate and the device
   half of the augmentation. Reported: ms per step and images per second.
2. The training DataLoader (bench/loader.py's data: 512-px PNG and JPEG q95 -> random resized crop
   224, tokenise) with --workers persistent workers: images per second, against the steps' rate.
3. A DDP step on 2 GPUs at the same per-GPU batch, negatives gathered from both: images per second
   against one GPU. Skipped with fewer than two GPUs (--tiny: two CPU processes with gloo).
4. The learned text-to-image pipeline (imagegen=phantom_diffusion, bench/gpu_check_t2i.py): images
   per second in float32 and float16, and the largest pixel difference float16 makes.
5. The learned report LM (llm=phantom_lm_small, bench/gpu_check_llm.py): requests per second and
   first-attempt exact-entity rate in float32 and bfloat16, and the share of texts bfloat16 keeps.

Prints a table and writes every figure to --out (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp
from bench_common import default_config
from gpu_check_llm import learned_lm_rate
from gpu_check_t2i import learned_t2i_rate
from loader import jpeg_copy
from torch.utils.data import DataLoader

from syncxr.data.mixing import load_table
from syncxr.data.paired_dataset import EpochShuffleSampler, ImageTextCollator, PairedImageTextDataset, augment_on_device
from syncxr.data.transforms import train_transform
from syncxr.launch.accelerator import build_accelerator
from syncxr.models.build import build_model
from syncxr.phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus

BERT_BASE = [
    "text_encoder=phantom_bert",
    "text_encoder.phantom.hidden_size=768",
    "text_encoder.phantom.num_layers=12",
    "text_encoder.phantom.num_heads=12",
    "text_encoder.phantom.intermediate_size=3072",
    "text_encoder.phantom.vocab_size=30000",
]
TINY_TOWERS = [
    "image_encoder=resnet18",
    "loader.image_size=32",
    "text_encoder=phantom_bert",
    "text_encoder.phantom.hidden_size=32",
    "text_encoder.phantom.num_layers=1",
    "text_encoder.phantom.num_heads=2",
    "text_encoder.phantom.intermediate_size=64",
    "text_encoder.phantom.vocab_size=400",
]
SETTINGS = {  # name: overrides of the paper's setting (the text tower as the papers', random weights)
    "convirt": ["experiment=convirt_paper", *BERT_BASE, "text_encoder.freeze_layers=6", "text_encoder.max_length=128"],
    "gloria": ["experiment=gloria_paper", *BERT_BASE],
}
TINY = {
    "convirt": [
        "experiment=convirt_paper",
        *TINY_TOWERS,
        "loader.batch_size=8",
        "model.proj_dim=16",
        "model.proj_hidden=32",
    ],
    "gloria": [
        "experiment=gloria_paper",
        *TINY_TOWERS,
        "loader.batch_size=8",
        "model.embed_dim=16",
        "model.image_size_model=48",
    ],
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def setting(name: str, tiny: bool, cache: str):
    return default_config([*(TINY if tiny else SETTINGS)[name], f"paths.cache_dir={cache}"])


def batch_for(cfg, tokenizer, data_dir: Path, batch_size: int) -> dict:
    """One collated training batch (uint8 crops, jitter factors, tokens) from the phantom corpus."""
    table = load_table(data_dir)
    ds = PairedImageTextDataset(table, train_transform(int(cfg.loader.image_size)), str(cfg.loader.text_mode))
    collate = ImageTextCollator(tokenizer, int(cfg.text_encoder.max_length))
    return collate([ds[i % len(ds)] for i in range(batch_size)])


def step_rate(cfg, data_dir: Path, steps: int, precision: str, batch_size: int | None = None) -> dict:
    """ms per training step (forward, backward, Adam) and images per second, this process's device."""
    torch.manual_seed(0)
    accelerator = build_accelerator(precision, cpu=not torch.cuda.is_available())
    model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    batch_size = batch_size or int(cfg.loader.batch_size)
    cpu_batch = batch_for(cfg, model.text_encoder.tokenizer, data_dir, batch_size)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model, opt = accelerator.prepare(model, opt)
    model.train()
    dev = accelerator.device

    def step():
        b = augment_on_device(
            {k: v.to(dev, non_blocking=True) if torch.is_tensor(v) else v for k, v in cpu_batch.items()}
        )
        loss = model(b["images"], b["input_ids"], b["attention_mask"])["loss"]
        accelerator.backward(loss)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(3):  # warm-up: kernels, allocator, cuDNN autotuning
        step()
    sync(dev)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync(dev)
        times.append(time.perf_counter() - t)
    ms = 1000 * statistics.median(times)
    out = {
        "ms_per_step": ms,
        "images_per_s": batch_size * 1000 / ms,
        "batch": batch_size,
        "processes": accelerator.num_processes,
        "device": str(dev),
        "precision": precision,
    }
    if dev.type == "cuda":
        out["max_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 2**30
    return out


def loader_rate(data_dir: Path, cache: str, tokenizer, size: int, batch: int, workers: int, passes: int) -> dict:
    """Images per second through the training DataLoader with persistent workers, PNG and JPEG."""
    png = load_table(data_dir)
    tables = {"png": png, "jpeg_q95": jpeg_copy(png, Path(cache) / "bench" / f"jpeg-{data_dir.name}")}
    out = {}
    for fmt, table in tables.items():
        ds = PairedImageTextDataset(table, train_transform(size), "sentence")
        loader = DataLoader(
            ds,
            batch_size=batch,
            sampler=EpochShuffleSampler(len(ds)),
            drop_last=True,
            collate_fn=ImageTextCollator(tokenizer, 128),
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
        n = sum(len(b["images"]) for b in loader)  # warm-up: starts the workers, fills the page cache
        t = time.perf_counter()
        for _ in range(passes):
            for _b in loader:
                pass
        out[fmt] = {"images_per_s": n * passes / (time.perf_counter() - t), "workers": workers}
    return out


def _ddp_rank(
    rank: int,
    world: int,
    port: int,
    name: str,
    tiny: bool,
    cache: str,
    data_dir: str,
    steps: int,
    precision: str,
    out_file: str,
):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1 if tiny else max(1, (os.cpu_count() or 2) // world))
    result = step_rate(setting(name, tiny, cache), Path(data_dir), steps, precision)
    if rank == 0:
        Path(out_file).write_text(json.dumps(result))


def ddp_rate(name: str, tiny: bool, cache: str, data_dir: Path, steps: int, precision: str) -> dict | None:
    """The step of `name` in 2 processes (one GPU each; --tiny: 2 CPU processes with gloo)."""
    if not tiny and torch.cuda.device_count() < 2:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        out_file = os.path.join(d, "rank0.json")
        mp.spawn(_ddp_rank, args=(2, port, name, tiny, cache, str(data_dir), steps, precision, out_file), nprocs=2)
        return json.loads(Path(out_file).read_text())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="tiny settings on the CPU: checks that every part runs")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    ap.add_argument("--workers", type=int, default=max(8, min(16, os.cpu_count() or 8)))
    ap.add_argument("--n", type=int, default=512, help="images of the loader's corpus")
    ap.add_argument("--cache", default=".cache/syncxr")
    ap.add_argument("--out", default="gpu_check.json")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cuda = torch.cuda.is_available()
    if args.tiny:  # tiny models are bound by op overheads: a second thread only waits for a busy core
        torch.set_num_threads(1)
    precision = "bf16" if cuda else "no"  # bf16 autocast on a CPU without AMX is slower than fp32
    steps, workers, n, stored = (2, 2, 32, 64) if args.tiny else (args.steps, args.workers, args.n, 512)
    report = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "gpus": torch.cuda.device_count(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "tiny": args.tiny,
        "precision": precision,
    }
    data_dir = ensure_phantom_corpus(
        PhantomCorpusSpec(kind="syn", n=n, image_size=stored, val_fraction=0.0), args.cache, progress=False
    )

    for name in ("convirt", "gloria"):
        report[f"{name}_step"] = step_rate(setting(name, args.tiny, args.cache), data_dir, steps, precision)
        print(
            f"{name:8s} step: {report[f'{name}_step']['ms_per_step']:8.1f} ms, "
            f"{report[f'{name}_step']['images_per_s']:7.0f} img/s (batch {report[f'{name}_step']['batch']}, "
            f"{precision}, {report[f'{name}_step']['device']})"
        )

    cfg = setting("convirt", args.tiny, args.cache)
    tokenizer = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder).text_encoder.tokenizer
    report["loader"] = loader_rate(
        data_dir,
        args.cache,
        tokenizer,
        int(cfg.loader.image_size),
        int(cfg.loader.batch_size),
        workers,
        passes=2 if args.tiny else 3,
    )
    need = report["convirt_step"]["images_per_s"]
    for fmt, r in report["loader"].items():
        print(
            f"loader {fmt:9s}: {r['images_per_s']:7.0f} img/s with {workers} workers "
            f"({r['images_per_s'] / need:.2f} x what the ConVIRT step consumes)"
        )

    ddp = ddp_rate("convirt", args.tiny, args.cache, data_dir, steps, precision)
    if ddp is None:
        print("DDP step: skipped (fewer than 2 GPUs)")
    else:
        report["convirt_ddp2_step"] = ddp
        one = report["convirt_step"]["images_per_s"]
        print(
            f"convirt DDP x2: {ddp['ms_per_step']:.1f} ms a step, {2 * ddp['images_per_s']:.0f} img/s in all "
            f"({2 * ddp['images_per_s'] / one:.2f} x one {'process' if args.tiny else 'GPU'})"
        )
    report["learned_t2i"] = learned_t2i_rate(args.tiny, args.cache)
    print(f"learned T2I: {report['learned_t2i']}")
    report["learned_lm"] = learned_lm_rate(args.tiny, args.cache)
    print(f"learned report LM: {report['learned_lm']}")
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
