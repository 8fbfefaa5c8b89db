"""The six quality questions of SynCXR's MLLM filter, asked of each image.

`HeuristicJudge` answers them for the phantom world from image statistics; `OpenAIVisionJudge`
asks any OpenAI-compatible vision endpoint (e.g. a vLLM-served MLLM).
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.ndimage import gaussian_filter, sobel, zoom

from ..data.image_io import png_data_url
from ..reports.backend_failure import BackendFailure, is_backend_failure

QUESTIONS = {
    "chest_xray": "Is this image a chest X-ray?",
    "human": "Is this a radiograph of a human?",
    "frontal": "Is this a frontal (PA or AP) view?",
    "quality": "Is the image quality acceptable (exposure and contrast)?",
    "artifacts": "Is the image free of artifacts and noise?",
    "fidelity": "Is the image of high fidelity (sharp, realistic anatomy)?",
}


class HeuristicJudge:
    """Image statistics that separate good phantom radiographs from the defects the phantom plants."""

    name = "heuristic"

    def ask(self, image: np.ndarray) -> dict[str, bool]:
        x = image.astype(np.float32) / 255.0
        x = zoom(x, (128 / x.shape[0], 128 / x.shape[1]), order=1)  # thresholds are set at 128 px
        body = x[16:112, 16:112]
        # A frontal chest has a bright spine between two dark lung fields at mid height.
        rows = x[38:76]
        spine_vs_lungs = float(rows[:, 58:70].mean() - max(rows[:, 28:44].mean(), rows[:, 84:100].mean()))
        smooth = gaussian_filter(x, 1.0)
        noise = float(np.median(np.abs(x - smooth)))
        spread = float(np.percentile(smooth, 95) - np.percentile(smooth, 5)) + 1e-3
        edges = float(np.percentile(np.hypot(sobel(smooth, 0), sobel(smooth, 1)), 99)) / spread
        return {
            "chest_xray": float(body.std()) > 0.08,
            "human": float(body.mean()) > 0.12,
            "frontal": spine_vs_lungs > 0.1,
            "quality": 0.15 < float(x.mean()) < 0.6 and float((x > 0.97).mean()) < 0.2,
            "artifacts": noise < 0.06,
            "fidelity": edges > 1.0,  # blurred images have soft organ borders
        }

    def judge(self, images: list[np.ndarray]) -> list[dict[str, bool]]:
        return [self.ask(im) for im in images]


class OpenAIVisionJudge:
    """Asks each question of an OpenAI-compatible vision chat endpoint; expects YES or NO."""

    name = "openai"

    def __init__(self, client):
        self.client = client  # an OpenAICompatibleLLM (shares its retries and counters)

    def judge(self, images: list[np.ndarray]) -> list[dict[str, bool] | BackendFailure]:
        """The six answers per image; a `BackendFailure` for an image whose questions the server
        could not answer (the image is then neither passed nor rejected)."""
        items = []
        for im in images:
            url = png_data_url(im)
            seed = zlib.crc32(im.tobytes())  # the image's own: its answers do not depend on its batch
            for q in QUESTIONS.values():
                msg = [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": q + " Answer YES or NO."}]}]
                items.append((msg, seed))
        answers = self.client.generate_messages(items)
        out = []
        for i in range(len(images)):
            row = answers[i * len(QUESTIONS):(i + 1) * len(QUESTIONS)]
            failed = next((a for a in row if is_backend_failure(a)), None)
            if failed is not None:
                out.append(failed)
                continue
            # An unanswered or unparseable question counts as NO: never pass an image unchecked.
            out.append({k: (a or "").strip().upper().startswith("YES") for k, a in zip(QUESTIONS, row)})
        return out

    def counters(self) -> dict:
        return {f"judge_{k.removeprefix('llm_')}": v for k, v in self.client.counters().items()}
