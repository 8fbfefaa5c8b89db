"""Overhead of the training machinery, as a ratio measured side by side.

  python bench/train_step.py [--steps 40] [--size 96] [--batch 32]   (the phantom default)

full step / bare step: a step of `syncxr.train.loop.train` (DataLoader, collate, tokenisation,
device moves, the batched jitter and normalisation, accelerate, scheduler, logging) against
forward+backward+optimizer on a batch that is already in memory, same model and batch size.
Goal <= 1.15. The loader's throughput is bench/loader.py's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from bench_common import default_config
from torch.utils.data import DataLoader

from syncxr.data.mixing import load_table
from syncxr.data.paired_dataset import EpochShuffleSampler, ImageTextCollator, PairedImageTextDataset, augment_on_device
from syncxr.data.transforms import train_transform
from syncxr.models.build import build_model
from syncxr.phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus
from syncxr.train.loop import LoopSettings, TrainingParts, train


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cache", default=".cache/syncxr")
    args = ap.parse_args()
    torch.manual_seed(0)
    data_dir = ensure_phantom_corpus(PhantomCorpusSpec(kind="syn", n=3000), args.cache)
    cfg = default_config([f"paths.cache_dir={args.cache}"])
    model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)  # the phantom default ConVIRT
    tokenizer = model.text_encoder.tokenizer
    table = load_table(data_dir)
    dataset = PairedImageTextDataset(table, train_transform(args.size), "sentence")
    sampler = EpochShuffleSampler(len(dataset))
    collate = ImageTextCollator(tokenizer, 96)
    loader = DataLoader(dataset, batch_size=args.batch, sampler=sampler, drop_last=True, collate_fn=collate)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    accelerator = Accelerator(cpu=True)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    batch = augment_on_device(collate([dataset[i] for i in range(args.batch)]))

    def bare(n):
        t = time.perf_counter()
        for _ in range(n):
            loss = model(batch["images"], batch["input_ids"], batch["attention_mask"])["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return (time.perf_counter() - t) / n

    def full(n):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            train(
                TrainingParts(model, optimizer, None, loader, [dataset], accelerator, augment_on_device),
                Path(d),
                LoopSettings(max_epochs=1, max_steps=n, log_every=10, resume=False, keep_checkpoints=1),
            )
            return (time.perf_counter() - t) / n

    bare(3), full(5)  # warm-up: kernels for each input shape are made on first use
    b1, f, b2 = bare(args.steps), full(args.steps), bare(args.steps)
    print(f"bare step  {1000 * (b1 + b2) / 2:7.1f} ms  (before {1000 * b1:.1f}, after {1000 * b2:.1f})")
    print(f"full step  {1000 * f:7.1f} ms")
    print(f"RATIO full/bare step: {f / ((b1 + b2) / 2):.3f}   (goal <= 1.15)")


if __name__ == "__main__":
    main()
