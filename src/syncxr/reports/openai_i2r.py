"""An image-to-report MLLM behind an OpenAI-compatible vision chat endpoint (e.g. served by vLLM):
each image goes as a PNG data URL, with the shared report prompt and the row's seed."""

from __future__ import annotations

import numpy as np

from ..data.image_io import png_data_url
from .i2r_prompt import REPORT_PROMPT


class OpenAIVisionI2R:
    name = "openai"
    reads_labels = False

    def __init__(self, client, prompt: str = REPORT_PROMPT):
        self.client = client  # an OpenAICompatibleLLM: its retries, timeouts and failure counters
        self.prompt = prompt

    def messages(self, image: np.ndarray) -> list[dict]:
        return [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": png_data_url(image)}},
                    {"type": "text", "text": self.prompt},
                ],
            }
        ]

    def describe(self, images: list[np.ndarray], seeds: list[int]) -> list[str | None]:
        if len(images) != len(seeds):
            raise ValueError(f"openai i2r: {len(images)} images but {len(seeds)} seeds")
        return self.client.generate_messages([(self.messages(im), int(s)) for im, s in zip(images, seeds)])

    def counters(self) -> dict:
        return self.client.counters()
