"""Sampling in which each row of a batch draws from its own seed: a row's text is a function of its
request's seed alone, not of the batch it lands in (its neighbours, their padding, the batch size).

Each step, the logits of a row are tempered and top-p filtered by transformers' own warpers, then
Gumbel noise drawn from a generator seeded by (the row's key, step) is added and the largest score wins:
the Gumbel-max trick, an exact sample of the filtered softmax. Generation itself runs greedy
(`do_sample=False`), so the library's shared random stream is never read. The noise is drawn on the
CPU, so a seed gives the same noise on any device; what can still differ between batchings is the
model's float rounding of the logits, which flips a draw only at a near-tie.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper


def step_generator(key: tuple[int, ...], step: int) -> torch.Generator:
    """A CPU generator for one row's one step: (key, step) mixed by numpy's SeedSequence, so nearby
    keys and steps give unrelated streams (seed + step would repeat across rows)."""
    state = np.random.SeedSequence([int(k) % 2**63 for k in key] + [step]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def gumbel_noise(key: tuple[int, ...], step: int, size: int) -> torch.Tensor:
    """`size` standard Gumbel variates, a function of (key, step) alone: -log(Exp(1))."""
    return -torch.empty(size, dtype=torch.float64).exponential_(generator=step_generator(key, step)).log()


class PerRowGumbelSampler(LogitsProcessor):
    """Turns greedy decoding into sampling at `temperature` with nucleus `top_p`, row r drawing from
    `keys[r]` (its seed, and whatever else tells its stream apart: the report section). `prompt_len`:
    the (left-padded) prompt length, so that the step is the index of the token being generated, the
    same for a row in any batch."""

    def __init__(self, keys: list[tuple[int, ...]], temperature: float, top_p: float, prompt_len: int):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 to sample (0 is greedy), got {temperature}")
        self.keys, self.prompt_len = [tuple(k) for k in keys], prompt_len
        self.warpers = [TemperatureLogitsWarper(temperature)]
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if len(self.keys) != scores.shape[0]:
            raise ValueError(f"{scores.shape[0]} rows of logits for {len(self.keys)} seeds")
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        step = input_ids.shape[1] - self.prompt_len
        noise = torch.stack([gumbel_noise(k, step, scores.shape[1]) for k in self.keys])
        return scores + noise.to(scores.device, scores.dtype)  # a filtered token stays at -inf
