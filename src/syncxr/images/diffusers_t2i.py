"""A diffusers text-to-image pipeline (RoentGen and kin, or the phantom world's learned one): any
pipeline directory or hub id `DiffusionPipeline.from_pretrained` loads (Stable Diffusion, DeepFloyd
IF's pixel-space base stage, ...), its class read from the checkpoint's model_index.json."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from diffusers import DiffusionPipeline
from PIL import Image


def native_size(pipe) -> int:
    """The side the pipeline's UNet was trained to draw (x the VAE's factor in latent pipelines)."""
    size = pipe.unet.config.sample_size
    size = size[0] if isinstance(size, (list, tuple)) else size
    return int(size) * int(getattr(pipe, "vae_scale_factor", 1))  # IF draws pixels: no factor


# Where a checkpoint's model_index.json may take its pipeline and components from: diffusers imports
# whatever module a component names, so a directory on disk must not choose the code that runs.
COMPONENT_LIBRARIES = ("diffusers", "transformers")


def check_components(components: dict, path: str) -> None:
    """Refuses a checkpoint whose model_index.json names a pipeline diffusers does not ship or a
    component from another library, naming the file and the entry."""
    import diffusers  # noqa: PLC0415

    pipeline = components.get("_class_name")
    if not isinstance(pipeline, str) or not hasattr(diffusers, pipeline):  # third-party
        raise ValueError(f"{path}/model_index.json: _class_name {pipeline!r} is not a diffusers pipeline")
    for name, entry in components.items():
        if name.startswith("_") or not isinstance(entry, list) or entry[0] is None:
            continue
        if entry[0] not in COMPONENT_LIBRARIES:
            raise ValueError(
                f"{path}/model_index.json: component {name!r} comes from {entry[0]!r}; "
                f"only {', '.join(COMPONENT_LIBRARIES)} components are loaded"
            )


class DiffusersT2I:
    """`height`/`width`: the size of the images returned (None: the pipeline's native size). The
    pipeline draws at min(asked, native) per side, and a smaller drawing is upsampled (bicubic) to the
    asked size: a 32 px phantom pipeline fills 128 px datasets, RoentGen draws 256 px when asked.
    `fp16`: float16 weights and activations on a GPU (ignored on the CPU, which computes in float32).
    Each image gets its own generator seeded by its own seed, so it does not depend on its batch."""

    name = "diffusers"
    quality: dict = {}  # what a learned pipeline's build measured (recorded in dataset.json)

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
        components = DiffusionPipeline.load_config(path)
        check_components(components, path)
        extra = {"safety_checker": None, "requires_safety_checker": False} if "safety_checker" in components else {}
        self.pipe = DiffusionPipeline.from_pretrained(path, dtype=dtype, **extra).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        # DeepFloyd IF cleans captions with bs4/ftfy by default (warning when absent): prompts go as written.
        self.call_kwargs = (
            {"clean_caption": False} if "clean_caption" in inspect.signature(self.pipe).parameters else {}
        )
        self.guidance_scale, self.steps, self.batch_size = guidance_scale, num_inference_steps, batch_size
        native = native_size(self.pipe)
        self.height, self.width = height or native, width or native
        self.draw = (min(self.height, native), min(self.width, native))

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
                height=self.draw[0],
                width=self.draw[1],
                **self.call_kwargs,
            ).images
            out.extend(np.asarray(self._to_size(im.convert("L"))) for im in images)
        return out

    def _to_size(self, image: Image.Image) -> Image.Image:
        if image.size == (self.width, self.height):
            return image
        return image.resize((self.width, self.height), Image.BICUBIC)

    def counters(self) -> dict:
        return {}  # in-process: no transport to count
