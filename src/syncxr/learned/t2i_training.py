"""Training of the phantom text-to-image model (see text_to_image.py for the design): a WordPiece
tokenizer and a small T5 text encoder trained jointly with a pixel-space UNet2DConditionModel
(DDPM noise-prediction loss), the prompt dropped for a fraction of the steps (classifier-free
guidance), all from one seed inside `torch.random.fork_rng()`."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.optimization import get_cosine_schedule_with_warmup
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

from ..models.phantom_text_encoder import train_wordpiece

MAX_LENGTH = 77  # diffusers' IFPipeline pads every prompt to 77 tokens; training sees the same
TRAIN_TIMESTEPS = 1000


@dataclass(frozen=True)
class T2ISpec:
    """Everything that determines a trained phantom text-to-image model (its hash addresses the cache)."""

    image_size: int = 32  # pixel side the UNet draws (the real images are area-downsampled to it)
    channels: tuple[int, ...] = (16, 32, 64, 64)  # UNet block widths, one block per resolution
    cross_attention_levels: int = 2  # the last (coarsest) levels that attend to the text
    text_hidden: int = 64
    text_layers: int = 2
    vocab_size: int = 400
    steps: int = 600  # optimiser steps
    batch_size: int = 32
    lr: float = 1e-3
    uncond_prob: float = 0.1  # prompt replaced by "" (classifier-free guidance)
    seed: int = 0

    def __post_init__(self):
        if self.image_size % 2 ** (len(self.channels) - 1):
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2**{len(self.channels) - 1} (one halving per block)"
            )
        if not 0 < self.cross_attention_levels <= len(self.channels):
            raise ValueError(f"cross_attention_levels {self.cross_attention_levels}: 1..{len(self.channels)}")
        if not 0.0 <= self.uncond_prob < 1.0:
            raise ValueError(f"uncond_prob {self.uncond_prob}: in [0, 1)")


def spec_from_dict(model: dict) -> T2ISpec:
    """The T2ISpec of a preset's `model` section, naming an unknown key."""
    try:
        return T2ISpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()})
    except TypeError as e:
        raise ValueError(f"imagegen.model: {e} (allowed: {sorted(T2ISpec.__dataclass_fields__)})") from e


def new_text_encoder(spec: T2ISpec, texts: list[str]) -> tuple[PreTrainedTokenizerFast, T5EncoderModel]:
    """A WordPiece tokenizer fixed by `texts` and a small T5 encoder (the class IFPipeline expects)."""
    tokenizer = train_wordpiece(texts, spec.vocab_size)
    tokenizer.model_max_length = MAX_LENGTH
    heads = max(spec.text_hidden // 32, 1)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=spec.text_hidden,
        d_kv=spec.text_hidden // heads,
        d_ff=2 * spec.text_hidden,
        num_layers=spec.text_layers,
        num_heads=heads,
        pad_token_id=tokenizer.pad_token_id,
        dropout_rate=0.0,
    )
    return tokenizer, T5EncoderModel(config)


def new_unet(spec: T2ISpec) -> UNet2DConditionModel:
    n, attn = len(spec.channels), spec.cross_attention_levels
    down = tuple("CrossAttnDownBlock2D" if i >= n - attn else "DownBlock2D" for i in range(n))
    return UNet2DConditionModel(
        sample_size=spec.image_size,
        in_channels=1,
        out_channels=2,  # IFPipeline splits noise and variance; its DPM-Solver keeps the noise half
        block_out_channels=spec.channels,
        layers_per_block=1,
        down_block_types=down,
        up_block_types=tuple(b.replace("Down", "Up") for b in reversed(down)),
        cross_attention_dim=spec.text_hidden,
        attention_head_dim=8,
        norm_num_groups=min(8, spec.channels[0]),
    )


def new_noise_scheduler() -> DDPMScheduler:
    # The cosine schedule keeps small images informative at more timesteps than the linear one.
    return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2")


def tokenize(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> dict[str, torch.Tensor]:
    """As diffusers' IFPipeline does: lower-cased, padded to MAX_LENGTH, with the attention mask."""
    enc = tokenizer(
        [t.lower().strip() for t in texts],
        padding="max_length",
        max_length=MAX_LENGTH,
        truncation=True,
        return_tensors="pt",
    )
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}


@dataclass
class T2IModel:
    tokenizer: PreTrainedTokenizerFast
    text_encoder: T5EncoderModel
    unet: UNet2DConditionModel
    noise: DDPMScheduler


def denoising_loss(model: T2IModel, x: torch.Tensor, tokens: dict, generator: torch.Generator) -> torch.Tensor:
    """The noise-prediction MSE at random timesteps, noise drawn from `generator`."""
    t = torch.randint(0, TRAIN_TIMESTEPS, (len(x),), generator=generator)
    eps = torch.randn(x.shape, generator=generator)
    noisy = model.noise.add_noise(x, eps, t)
    text = model.text_encoder(**tokens)[0]
    pred = model.unet(noisy, t, encoder_hidden_states=text).sample[:, :1]  # the noise (variance unused)
    return torch.nn.functional.mse_loss(pred, eps)


@torch.no_grad()
def heldout_loss(model: T2IModel, x: torch.Tensor, tokens: dict, seed: int) -> float:
    """The denoising loss on held-out images with fixed noise and timesteps (comparable across training)."""
    g, total = torch.Generator().manual_seed(seed), 0.0
    model.unet.eval(), model.text_encoder.eval()
    for i in range(0, len(x), 64):
        part = {k: v[i : i + 64] for k, v in tokens.items()}
        total += float(denoising_loss(model, x[i : i + 64], part, g)) * len(x[i : i + 64])
    model.unet.train(), model.text_encoder.train()
    return total / max(len(x), 1)


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """N x S x S in [0, 1] -> N x 1 x S x S in [-1, 1], the pipeline's pixel range."""
    return torch.from_numpy(images).unsqueeze(1) * 2.0 - 1.0


def train_t2i(
    spec: T2ISpec, train: tuple[np.ndarray, list[str]], val: tuple[np.ndarray, list[str]], progress: bool = True
) -> tuple:
    """(T2IModel, figures) trained on `train` = (images in [0, 1], prompts); the held-out denoising
    loss on `val` before and after training is in the figures."""
    start, cpu = time.perf_counter(), time.process_time()
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        tokenizer, text_encoder = new_text_encoder(spec, train[1])
        model = T2IModel(tokenizer, text_encoder, new_unet(spec), new_noise_scheduler())
        x, tokens = to_unit_range(train[0]), tokenize(tokenizer, train[1])
        empty = tokenize(tokenizer, [""])
        vx, vtok = to_unit_range(val[0]), tokenize(tokenizer, val[1])
        figures = {"val_loss_init": heldout_loss(model, vx, vtok, spec.seed)}
        params = [*model.unet.parameters(), *model.text_encoder.parameters()]
        opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=0.01)
        sched = get_cosine_schedule_with_warmup(opt, min(50, spec.steps // 10), spec.steps)
        g = torch.Generator().manual_seed(spec.seed + 1)
        losses = []
        bar = tqdm(range(spec.steps), desc="phantom text-to-image", mininterval=5, disable=not progress)
        for step in bar:
            idx = torch.randint(0, len(x), (spec.batch_size,), generator=g)
            drop = torch.rand(spec.batch_size, generator=g) < spec.uncond_prob
            batch = {k: torch.where(drop[:, None], empty[k], v[idx]) for k, v in tokens.items()}
            loss = denoising_loss(model, x[idx], batch, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        figures["val_loss"] = heldout_loss(model, vx, vtok, spec.seed)
    tail = losses[-max(len(losses) // 10, 1) :]
    figures.update(
        train_loss_last=float(np.mean(tail)),
        train_seconds=round(time.perf_counter() - start, 1),
        train_cpu_seconds=round(time.process_time() - cpu, 1),  # what a busy machine's wall clock hides
    )
    return model, figures
