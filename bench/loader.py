"""Does the training loader keep a GPU fed? Its throughput at the paper's settings, side by side with
a bare decode loop over the same files.

  python bench/loader.py [--n 320] [--size 224] [--batch 32] [--workers 2] [--rounds 5]

Data: a phantom corpus rendered at 512 px (the stored size of ingested MIMIC-CXR), as PNG (how
generated datasets are stored) and as JPEG quality 95 (how MIMIC-CXR is ingested); the phantom
text tower's tokenizer (the paper's Bio_ClinicalBERT cannot be downloaded here).

  bare decode   per image: decode, resize to size x size (the least any loader must do)
  DataLoader    the training DataLoader: per-sample seeded random resized crop to size x size (uint8)
                and jitter factors, one report sentence, collate, tokenise; in-process, and with
                --workers persistent worker processes (steady state: start-up is paid once a run)
  device half   the batched jitter + normalisation the training loop applies on the device (timed
                here on the CPU, for the record: on a GPU it is a few element-wise kernels a batch)

Goals, printed side by side: DataLoader / bare decode >= 0.9 (the loader adds at most 10 % to the
decoding) and >= 300 images/s per CPU core. Both are given in CPU time (images per CPU-second of
every process that worked, workers included), which other sessions loading the machine disturb
least, and in wall-clock time (in-process: one core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from bench_common import default_config
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import functional as F

from syncxr.config import build
from syncxr.data.images import load_gray, open_gray
from syncxr.data.mixing import load_table
from syncxr.data.paired_dataset import EpochShuffleSampler, ImageTextCollator, PairedImageTextDataset, augment_on_device
from syncxr.data.transforms import train_transform
from syncxr.phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus

GOAL_RATIO, GOAL_PER_CORE = 0.9, 300


class StampedCollate:
    """The training collate, stamping each batch with (pid, CPU seconds so far) of the process that
    made it: how the main process learns the CPU time of DataLoader workers while they live."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, samples):
        return {**self.collate(samples), "cpu": (os.getpid(), time.process_time())}


class LoaderMeter:
    """Passes over one DataLoader, each timed in wall and CPU seconds (main process + workers)."""

    def __init__(self, loader: DataLoader, n: int):
        self.loader, self.n = loader, n
        self.last: dict[int, float] = {}  # each worker's CPU clock at its last batch so far

    def one_pass(self) -> tuple[float, float]:
        w, c, seen, stamps = time.perf_counter(), time.process_time(), 0, {}
        for b in self.loader:
            pid, t = b["cpu"]
            stamps[pid] = t
            seen += len(b["images"])
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        assert seen == self.n, (seen, self.n)
        workers = {p: t for p, t in stamps.items() if p != os.getpid()}
        cpu += sum(t - self.last.get(p, t) for p, t in workers.items())  # first pass: warm-up only
        self.last.update(workers)
        return wall, cpu


def timed(fn) -> tuple[float, float]:
    """(wall s, CPU s) of fn() in this process."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def jpeg_copy(table, out: Path):
    """The table's images re-encoded as JPEG quality 95 (made once)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in table["path"]:
        q = out / (Path(p).stem + ".jpg")
        if not q.is_file():
            Image.open(p).convert("L").save(q, "JPEG", quality=95)
        paths.append(str(q))
    return table.assign(path=paths)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=320, help="images per pass")
    ap.add_argument("--stored", type=int, default=512, help="side of the stored images")
    ap.add_argument("--size", type=int, default=224, help="side fed to the image encoder")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--rounds", type=int, default=5, help="interleaved repeats (medians are printed)")
    ap.add_argument("--cache", default=".cache/syncxr")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one core per process, as in each DataLoader worker
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread; workers are forked

    data_dir = ensure_phantom_corpus(
        PhantomCorpusSpec(kind="syn", n=args.n, image_size=args.stored, val_fraction=0.0), args.cache
    )
    cfg = default_config([f"paths.cache_dir={args.cache}"])
    tokenizer = build(cfg.text_encoder, "text_encoder").tokenizer
    png = load_table(data_dir)
    tables = {"PNG": png, "JPEG q95": jpeg_copy(png, Path(args.cache) / "bench" / f"jpeg-{data_dir.name}")}
    collate = ImageTextCollator(tokenizer, int(cfg.text_encoder.max_length))
    print(
        f"{args.n} images stored at {args.stored} px -> {args.size} px, batch {args.batch}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}"
    )

    for fmt, table in tables.items():
        paths = list(table["path"])
        n = len(paths)
        dataset = PairedImageTextDataset(table, train_transform(args.size, 0.8, 0.2), "sentence", seed=0)

        def bare():
            for p in paths:
                open_gray(p).resize((args.size, args.size), Image.Resampling.BILINEAR)

        def bare_tensor():  # the previous bench's reference: decode to a tensor, torchvision resize
            for p in paths:
                F.resize(load_gray(p), [args.size, args.size], antialias=True)

        def meter(workers: int) -> LoaderMeter:
            loader = DataLoader(
                dataset,
                batch_size=args.batch,
                sampler=EpochShuffleSampler(n, seed=0),
                collate_fn=StampedCollate(collate),
                num_workers=workers,
                persistent_workers=workers > 0,
                prefetch_factor=4 if workers else None,
            )
            m = LoaderMeter(loader, n)
            m.one_pass()  # warm-up: starts the workers, fills the page cache
            return m

        wk = f"{args.workers} workers"
        loaders = {"in-process": meter(0), wk: meter(args.workers)}
        runs = {
            "bare": lambda: timed(bare),
            "bare_tensor": lambda: timed(bare_tensor),
            **{k: m.one_pass for k, m in loaders.items()},
        }
        walls, cpus = {k: [] for k in runs}, {k: [] for k in runs}
        for _ in range(args.rounds):
            for k, fn in runs.items():
                w, c = fn()
                walls[k].append(n / w)
                cpus[k].append(n / c)
        del loaders  # stops the workers
        wall = {k: statistics.median(v) for k, v in walls.items()}
        cpu = {k: statistics.median(v) for k, v in cpus.items()}
        print(f"\n{fmt} (medians of {args.rounds} rounds)             img/s wall | img per CPU-second")
        print(f"  bare decode+resize (PIL)                {wall['bare']:7.0f} | {cpu['bare']:7.0f}")
        print(f"  bare decode->tensor+resize (previous)   {wall['bare_tensor']:7.0f} | {cpu['bare_tensor']:7.0f}")
        print(f"  DataLoader in-process                   {wall['in-process']:7.0f} | {cpu['in-process']:7.0f}")
        print(f"  DataLoader {wk:28s} {wall[wk]:7.0f} | {cpu[wk]:7.0f}")
        print(
            f"  RATIO DataLoader/bare decode: {cpu['in-process'] / cpu['bare']:.3f} in-process, "
            f"{cpu[wk] / cpu['bare']:.3f} with {wk} (CPU time); {wall['in-process'] / wall['bare']:.3f} "
            f"in-process (wall)   goal >= {GOAL_RATIO}"
        )
        print(
            f"  IMAGES/S PER CORE: {cpu['in-process']:.0f} in-process, {cpu[wk]:.0f} with {wk} (CPU time); "
            f"{wall['in-process']:.0f} in-process (wall)   goal >= {GOAL_PER_CORE}"
        )

    # The device half, on this CPU: one batch of uint8 crops -> normalised floats.
    batch = collate([dataset[i] for i in range(args.batch)])
    augment_on_device(batch)
    t = time.perf_counter()
    for _ in range(20):
        augment_on_device(batch)
    per_image = (time.perf_counter() - t) / 20 / args.batch
    print(
        f"\ndevice half (jitter + normalise, batched) on this CPU: {1e6 * per_image:.0f} us per image "
        f"({1 / per_image:.0f} img/s on one core)"
    )


if __name__ == "__main__":
    main()
