"""GLoRIA word-to-region attention maps as a picture: image, attention of the finding word, GT mask."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ..data.durable import save_figure_atomic  # noqa: E402


def caption_words(tokenizer, input_ids: Sequence[int], word_of_token: Sequence[int]) -> list[str]:
    """The words of one caption, WordPiece pieces joined, in the model's word order."""
    words: dict[int, str] = {}
    for token, k in zip(tokenizer.convert_ids_to_tokens(list(input_ids)), word_of_token):
        if k >= 0:
            words[k] = words.get(k, "") + (token[2:] if token.startswith("##") else token)
    return [words[k] for k in sorted(words)]


def finding_map(maps: torch.Tensor, words: list[str], finding: str) -> tuple[torch.Tensor, str]:
    """Mean attention (h x w) of the caption words that make up `finding` (e.g. "pleural
    effusion"); all the caption's words when none of them occurs. Also returns what was used."""
    wanted = set(finding.lower().split())
    hits = [k for k, w in enumerate(words) if w.lower() in wanted]
    if hits:
        return maps[hits].mean(0), " ".join(words[k] for k in hits)
    return maps[: len(words)].mean(0), "(all words)"


@torch.no_grad()
def save_attention_grid(
    model,
    tokenizer,
    images: torch.Tensor,
    captions: Sequence[str],
    masks: Sequence[np.ndarray],
    findings: Sequence[str],
    path: str | Path,
    max_length: int = 97,
) -> Path:
    """Writes a PNG with one row per image: the image, the attention map of its finding word(s)
    overlaid, and the ground-truth mask.

    `model` is a GLoRIA (its `word_attention`), `images` B x 1 x H x W as fed to training, `masks`
    B boolean arrays (any size), `findings` the finding phrase to show per image (e.g. "effusion").
    """
    n = len(images)
    if not len(captions) == len(masks) == len(findings) == n:
        raise ValueError(
            f"attention grid: {n} images but {len(captions)} captions, {len(masks)} masks and {len(findings)} findings"
        )
    device = next(model.parameters()).device
    tok = tokenizer(list(captions), padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    was_training = model.training
    model.eval()
    maps, _, word_of_token = model.word_attention(
        images.to(device), tok["input_ids"].to(device), tok["attention_mask"].to(device)
    )
    model.train(was_training)
    maps = maps.float().cpu()
    fig, axes = plt.subplots(n, 3, figsize=(9, 3.2 * n), squeeze=False)
    for i in range(n):
        words = caption_words(tokenizer, tok["input_ids"][i].tolist(), word_of_token[i].tolist())
        amap, used = finding_map(maps[i], words, findings[i])
        image = images[i, 0].float().cpu()
        image = ((image - image.min()) / (image.max() - image.min()).clamp_min(1e-8)).numpy()
        amap = F.interpolate(amap[None, None], size=image.shape, mode="bilinear", align_corners=False)[0, 0]
        ax_img, ax_att, ax_mask = axes[i]
        ax_img.imshow(image, cmap="gray")
        ax_img.set_title("\n".join(textwrap.wrap(captions[i], 40)[:3]), fontsize=7)
        ax_att.imshow(image, cmap="gray")
        ax_att.imshow(amap.numpy(), cmap="jet", alpha=0.45)
        ax_att.set_title(f"attention: {used}", fontsize=8)
        ax_mask.imshow(np.asarray(masks[i], dtype=bool), cmap="gray")
        ax_mask.set_title(f"ground truth: {findings[i]}", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)
    return path


def phantom_attention_examples(
    transform, keys=("pleural_effusion", "cardiomegaly", "consolidation", "pneumothorax"), seed: int = 0
):
    """Phantom test images with one finding each: (images, captions, masks, findings) for the grid."""
    from ..phantom.renderer import render
    from ..phantom.scene import sample_scene
    from ..phantom.vocabulary import FINDINGS

    rng = np.random.default_rng(seed)
    images, captions, masks, findings = [], [], [], []
    for k in keys:
        image, m = render(sample_scene(rng, [k]), 128)
        images.append(transform(torch.from_numpy(image)[None]))
        term = FINDINGS[k].canonical
        captions.append(f"There is {term}.")
        masks.append(m[k])
        findings.append(term)
    return torch.stack(images), captions, masks, findings
