"""gpu_check.py's learned text-to-image step: imagegen=phantom_diffusion (trained on first use on the
CPU, or read from the cache) draws images through DiffusersT2I on the device, in float32 and in
float16 (GPU only), with its own seeds; reported: images per second each way and the largest pixel
difference float16 makes (uint8 levels). --tiny: a tiny model on a tiny corpus, in seconds."""

from __future__ import annotations

import time

import numpy as np
import torch
from bench_common import default_config

from syncxr.config import build, plain
from syncxr.images.diffusers_t2i import DiffusersT2I
from syncxr.learned.t2i_training import spec_from_dict
from syncxr.learned.text_to_image import ensure_t2i

TINY = [
    "phantom.n=120",
    "phantom.image_size=32",
    "imagegen.model.image_size=16",
    "imagegen.model.channels=[8,16]",
    "imagegen.model.cross_attention_levels=1",
    "imagegen.model.text_hidden=16",
    "imagegen.model.text_layers=1",
    "imagegen.model.steps=4",
    "imagegen.model.batch_size=8",
]


def _rate(path: str, cfg, fp16: bool, prompts: list[str]) -> tuple[float, list[np.ndarray]]:
    t2i = DiffusersT2I(
        path,
        guidance_scale=float(cfg.guidance_scale),
        num_inference_steps=int(cfg.num_inference_steps),
        batch_size=int(cfg.batch_size),
        height=None,
        width=None,
        fp16=fp16,
    )
    seeds = list(range(len(prompts)))
    t2i.generate(prompts[: t2i.batch_size], seeds[: t2i.batch_size])  # warm-up (kernels, allocator)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    images = t2i.generate(prompts, seeds)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return len(prompts) / (time.perf_counter() - start), images


def learned_t2i_rate(tiny: bool, cache: str, n_images: int = 512) -> dict:
    """Images per second of the learned T2I pipeline (float32 and, on a GPU, float16)."""
    cfg = default_config(["imagegen=phantom_diffusion", f"paths.cache_dir={cache}", *(TINY if tiny else [])])
    section = plain(cfg.imagegen)
    start = time.perf_counter()
    build(cfg.imagegen, "imagegen")  # trains (CPU) and measures quality on first use, else reads the cache
    ready_s = time.perf_counter() - start
    path = str(ensure_t2i(section["cache_dir"], section["corpus"], spec_from_dict(section["model"])))
    prompts = ["Moderate pleural effusion.", "Normal chest radiograph.", "Cardiomegaly.", "Right pneumothorax."]
    prompts = (prompts * n_images)[: 16 if tiny else n_images]
    fp32, images32 = _rate(path, cfg.imagegen, False, prompts)
    out = {"build_or_load_s": round(ready_s, 1), "images": len(prompts), "fp32_images_per_s": round(fp32, 1)}
    if torch.cuda.is_available():
        fp16, images16 = _rate(path, cfg.imagegen, True, prompts)
        diff = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(images32, images16))
        out.update(fp16_images_per_s=round(fp16, 1), fp16_max_abs_diff_uint8=diff)
    return out
