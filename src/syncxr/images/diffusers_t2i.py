"""A Stable-Diffusion text-to-image model (RoentGen and kin) through `diffusers`."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import StableDiffusionPipeline


class DiffusersT2I:
    name = "diffusers"
    quality: dict = {}  # measured figures (syncxr.backends); a learned preset's factory sets its own

    def __init__(
        self,
        path: str,
        *,
        guidance_scale: float,
        num_inference_steps: int,
        batch_size: int,
        height: int | None,
        width: int | None,
        fp16: bool,
        device: str | None = None,
    ):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float16 if fp16 and self.device.startswith("cuda") else torch.float32
        self.pipe = StableDiffusionPipeline.from_pretrained(
            path, dtype=dtype, safety_checker=None, requires_safety_checker=False
        ).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.guidance_scale, self.steps, self.batch_size = guidance_scale, num_inference_steps, batch_size
        self.height, self.width = height, width

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int]) -> list[np.ndarray]:
        out = []
        for i in range(0, len(prompts), self.batch_size):
            p, s = prompts[i : i + self.batch_size], seeds[i : i + self.batch_size]
            gens = [torch.Generator(self.device).manual_seed(int(x)) for x in s]  # one per image: reproducible
            images = self.pipe(
                p,
                guidance_scale=self.guidance_scale,
                num_inference_steps=self.steps,
                generator=gens,
                height=self.height,
                width=self.width,
            ).images
            out.extend(np.asarray(im.convert("L")) for im in images)
        return out

    def counters(self) -> dict:
        return {}  # in-process: no transport to count
