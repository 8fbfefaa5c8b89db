"""Image embeddings for curation: a Hugging Face vision encoder (RAD-DINO in the paper preset) or a
fixed, training-free phantom embedding."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import zoom

from ..phantom.renderer import render
from ..phantom.scene import sample_scene
from ..phantom.vocabulary import FINDING_KEYS


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-8, None)


class PhantomEmbedder:
    """A 16x16 thumbnail of the intensity-normalised image, standardised per pixel against typical
    phantom radiographs: a normal radiograph becomes small noise-like deviations, while an image of
    the wrong layout (a lateral view, a non-chest image) deviates in a direction of its own, so cosine
    similarity groups such images together.
    """

    name = "phantom"

    def __init__(self, reference_n: int = 128, seed: int = 12345):
        rng = np.random.default_rng(seed)
        ref = []
        for _ in range(reference_n):
            keys = rng.choice(FINDING_KEYS, size=int(rng.integers(0, 3)), replace=False)
            ref.append(render(sample_scene(rng, keys), 64)[0])
        f = self._features(ref)
        self.mean, self.std = f.mean(0), f.std(0) + 1e-3

    @staticmethod
    def _features(images) -> np.ndarray:
        out = []
        for im in images:
            x = im.astype(np.float32)
            x = (x - x.mean()) / (x.std() + 1e-3)  # exposure and contrast are the judge's business
            out.append(zoom(x, (16 / x.shape[0], 16 / x.shape[1]), order=1).ravel())
        return np.stack(out)

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        return _normalise((self._features(images) - self.mean) / self.std)


class HFImageEmbedder:
    """`AutoModel.from_pretrained` vision encoder; the pooled output (or the CLS token) per image."""

    name = "transformers"

    def __init__(self, path: str, batch_size: int, device: str | None = None):
        # Imported here: transformers costs 1-3 s to import, and the phantom embedder does not need it.
        from transformers import AutoImageProcessor, AutoModel  # noqa: PLC0415

        self.processor = AutoImageProcessor.from_pretrained(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = [Image.fromarray(im).convert("RGB") for im in images[i : i + self.batch_size]]
            enc = self.processor(images=batch, return_tensors="pt").to(self.device)
            res = self.model(**enc)
            pooled = getattr(res, "pooler_output", None)  # third-party: a transformers output
            feats = pooled if pooled is not None else res.last_hidden_state[:, 0]
            out.append(feats.float().cpu().numpy())
        return _normalise(np.concatenate(out))
