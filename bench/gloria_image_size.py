"""GLoRIA training step at the images' loaded size vs. upsampled inside the model, side by side.

  python bench/gloria_image_size.py [--steps 20] [--size 96] [--model-size 128] [--batch 32]

Same weights, same in-memory batch, forward+backward+Adam; the two settings alternate (A B A B) so
machine drift hits both. Prints the step-time ratio upsampled / as loaded: what the phantom default
(`model.image_size_model: null`, 96 px) saves over upsampling to 128.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from bench_common import default_config

from syncxr.data.mixing import load_table
from syncxr.data.paired_dataset import ImageTextCollator, PairedImageTextDataset, augment_on_device
from syncxr.data.transforms import train_transform
from syncxr.models.build import build_model
from syncxr.phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--model-size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cache", default=".cache/syncxr")
    args = ap.parse_args()
    torch.manual_seed(0)
    data_dir = ensure_phantom_corpus(PhantomCorpusSpec(kind="syn", n=3000), args.cache)
    cfg = default_config(["model=gloria", f"paths.cache_dir={args.cache}"])
    base = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)  # the phantom default (96 px as loaded)
    tokenizer = base.text_encoder.tokenizer
    models = {"as loaded": base, "upsampled": copy.deepcopy(base)}
    models["upsampled"].image_size_model = args.model_size
    optims = {k: torch.optim.Adam(m.parameters(), lr=1e-5) for k, m in models.items()}
    dataset = PairedImageTextDataset(load_table(data_dir), train_transform(args.size), "sentence")
    batch = augment_on_device(ImageTextCollator(tokenizer, 96)([dataset[i] for i in range(args.batch)]))

    def step_time(name, n):
        model, opt = models[name], optims[name]
        t = time.perf_counter()
        for _ in range(n):
            model(batch["images"], batch["input_ids"], batch["attention_mask"])["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return (time.perf_counter() - t) / n

    for name in models:  # warm-up: kernels for each input shape are made on first use
        step_time(name, 2)
    times = {k: 0.0 for k in models}
    for _ in range(2):
        for name in models:
            times[name] += step_time(name, args.steps) / 2
    for name, t in times.items():
        print(f"{name:10s} {1000 * t:7.1f} ms/step")
    print(
        f"RATIO upsampled to {args.model_size} / as loaded ({args.size} px): "
        f"{times['upsampled'] / times['as loaded']:.2f}"
    )


if __name__ == "__main__":
    main()
