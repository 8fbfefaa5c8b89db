"""Zero-shot grounding: a text-to-region similarity map, upsampled to the image, binarised, scored
with IoU and Dice against the ground-truth region of each positive image.

The map comes from the model's own word-to-region similarity when it has one (GLoRIA's
`word_similarity`, the finding's words against each region), else from local features: the final
convolutional layer's map (ResNet layer4) projected per location by the model's global image
projection, cosine with the prompt embedding (`syncxr.eval.embeddings.local_features`, cached like
any image feature). `map: final_conv` takes the local features for every model, GLoRIA included:
the BioViL pipeline the SynCXR paper (A.2) evaluates both its models with, after MAVL (Phan et al.,
2024b).

Each map is min-max normalised per image, bilinearly upsampled to `mask_size` and cut at one
threshold, chosen (from a grid) for the best mean Dice on the validation split's positives, or on
the test split's with `protocol="paper"`. Two baselines go through exactly the same steps, threshold
choice included: a random map (uniform noise at the map's resolution), the floor, and an oracle map
(the ground-truth mask averaged over each cell of the map's grid), the best a map of that
resolution can score: a low oracle says the map is too coarse for the targets, whatever the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.functional import interpolate
from tqdm.auto import tqdm

from ..config_choices import ATTRIBUTION_MODES, ENSEMBLES, FINAL_CONV
from ..data.benchmark_split import Split
from ..models.protocols import VisionLanguageModel
from .metrics import bootstrap_ci, iou_dice

THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 3)


def own_similarity(model: VisionLanguageModel):
    """(name, fn(images, input_ids, attention_mask, name_mask) -> B x h x w) of the model's own
    text-to-region map, or None for a model without local maps; `name_mask` (B x L) marks the tokens
    of the finding's name in each prompt. A LocalMapModel's (GLoRIA's) `word_similarity` scores each
    region against the finding's words only: its word attention is a softmax over the caption's words
    first, so averaged over all the prompt's words it is flat (one word: exactly) and says nothing
    about where the finding is (docs/measurements.md#gloria-word-attention-map)."""
    return ("model.word_similarity", model.word_similarity) if model.has_local_maps else None


def has_own_similarity(model: VisionLanguageModel) -> bool:
    return own_similarity(model) is not None


def own_maps_used(model: VisionLanguageModel, mode: str) -> bool:
    """Whether map `mode` reads the model's own word-to-region maps (positive | contrast on a model
    that has them), rather than the final conv layer's local features or an attribution."""
    return has_own_similarity(model) and mode not in (FINAL_CONV, *ATTRIBUTION_MODES)


def prompt_tokens(tokenizer, prompts: list[str], max_length: int, spans: list[tuple[int, int]] | None = None) -> dict:
    """Tokenised prompts; with the name's character `spans`, also `name_mask` (B x L bool): the
    tokens that overlap the name (needs a fast tokenizer's offsets)."""
    tok = tokenizer(
        prompts,
        padding="longest",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_offsets_mapping=spans is not None,
    )
    if spans is not None:
        offsets = tok.pop("offset_mapping")  # B x L x 2; (0, 0) for special and padding tokens
        start, end = torch.tensor(spans).T[..., None]
        tok["name_mask"] = (offsets[..., 1] > offsets[..., 0]) & (offsets[..., 0] < end) & (offsets[..., 1] > start)
        empty = [prompts[i] for i in torch.nonzero(~tok["name_mask"].any(1)).flatten().tolist()]
        if empty:
            raise ValueError(f"no token of the class name survives tokenisation (max_length={max_length}) in {empty}")
    return tok


def local_similarity(local: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """N x h x w cosine similarity of normalised local features N x h x w x D and a text embedding D."""
    return torch.einsum("nhwd,d->nhw", local, F.normalize(text, dim=-1))


# How the maps of a prompt list combine (task.zeroshot_grounding.prompts.ensemble): "mean", or per
# cell "max", so that each prompt may claim its own part of the image: "left {}" one side, "right {}"
# the other, where their mean (or a prompt naming no side) lights both (docs/evaluation.md#sided-prompts).
def combine_prompt_maps(maps: torch.Tensor, ensemble: str) -> torch.Tensor:
    """P x N x h x w maps, one per prompt, as one N x h x w map per image."""
    if ensemble not in ENSEMBLES:
        raise ValueError(f"task.zeroshot_grounding.prompts.ensemble must be one of {ENSEMBLES}, got {ensemble!r}")
    return maps.mean(0) if ensemble == "mean" else maps.amax(0)


@torch.no_grad()
def model_similarity_maps(
    model: VisionLanguageModel,
    split: Split,
    transform,
    tok: dict,
    accelerator,
    batch_size: int = 32,
    ensemble: str = "mean",
) -> torch.Tensor:
    """N x h x w maps from the model's own map (see `own_similarity`), one per prompt combined as
    `ensemble` says."""
    _, fn = own_similarity(model)
    out = []
    ids, mask = tok["input_ids"].to(accelerator.device), tok["attention_mask"].to(accelerator.device)
    names = tok.get("name_mask")
    for start in tqdm(
        range(0, len(split), batch_size),
        desc="similarity maps",
        leave=False,
        disable=not accelerator.is_local_main_process,
    ):
        idx = range(start, min(start + batch_size, len(split)))
        x = torch.stack([transform(split.load(i)) for i in idx]).to(accelerator.device)
        maps = []
        for p in range(len(ids)):
            b = len(x)
            with accelerator.autocast():
                name = None if names is None else names[p : p + 1].expand(b, -1).to(accelerator.device)
                maps.append(fn(x, ids[p : p + 1].expand(b, -1), mask[p : p + 1].expand(b, -1), name).float())
        out.append(combine_prompt_maps(torch.stack(maps), ensemble).cpu())
    return torch.cat(out)


@torch.no_grad()
def occlusion_maps(
    model: VisionLanguageModel,
    split: Split,
    transform,
    pos: torch.Tensor,
    neg: torch.Tensor,
    accelerator,
    grid: int,
    batch_size: int = 32,
) -> torch.Tensor:
    """N x grid x grid occlusion sensitivity (Zeiler & Fergus, 2014) of the zero-shot score: for each
    cell of a grid x grid partition of the input, how much the image's score (cosine of its embedding
    with the positive prompts' minus with the negative prompts') falls when that cell is replaced by
    the image's mean. It maps where the global embedding finds the finding, at any grid, for any
    model with `encode_image` (ConVIRT's own objective is global: nothing aligns its local features
    with the text)."""
    if grid < 1:
        raise ValueError(f"task.zeroshot_grounding.occlusion_grid must be >= 1, got {grid}")
    direction = (pos - neg).to(accelerator.device)
    out = []
    for i in tqdm(range(len(split)), desc="occlusion maps", leave=False, disable=not accelerator.is_local_main_process):
        x = transform(split.load(i))  # 1 x S x S
        edges = np.linspace(0, x.shape[-1], grid + 1).round().astype(int)
        copies = x.unsqueeze(0).repeat(grid * grid + 1, 1, 1, 1)
        fill = x.mean()
        for k in range(grid * grid):
            r, c = divmod(k, grid)
            copies[k + 1, :, edges[r] : edges[r + 1], edges[c] : edges[c + 1]] = fill
        scores = []
        for start in range(0, len(copies), batch_size):
            with accelerator.autocast():
                emb = model.encode_image(copies[start : start + batch_size].to(accelerator.device)).float()
            scores.append(F.normalize(emb, dim=-1) @ direction)
        score = torch.cat(scores).cpu()
        out.append((score[0] - score[1:]).view(grid, grid))
    return torch.stack(out)


def resnet_stage(model: VisionLanguageModel, name: str):
    """The named stage (`layer1`..`layer4`) of the model's ResNet image tower, for Grad-CAM."""
    encoder = model.image_encoder
    stage = None
    if encoder.has_resnet_stages and name.startswith("layer"):
        stage = getattr(encoder.net, name, None)  # third-party: a torchvision ResNet's stage
    if stage is None:
        raise ValueError(
            f"task.zeroshot_grounding.gradcam_layer={name!r}: the image tower "
            f"{type(model.image_encoder).__name__} has no ResNet stage of that name (layer1..layer4)"
        )
    return stage


def gradcam_maps(
    model: VisionLanguageModel,
    split: Split,
    transform,
    pos: torch.Tensor,
    neg: torch.Tensor,
    accelerator,
    layer: str,
    batch_size: int = 32,
) -> torch.Tensor:
    """N x h x w Grad-CAM (Selvaraju et al., 2017; captum's LayerGradCam) of the zero-shot score, the
    cosine of the image embedding with the positive prompts' minus with the negative prompts', at a
    stage of the ResNet image tower: each channel of the stage weighted by the score's mean gradient
    over it, summed, rectified. Unlike occlusion it changes no pixel, so a lucent finding (a
    pneumothorax) is not mimicked by the probe, and a diffuse one adds up over its cells."""
    from captum.attr import LayerGradCam  # imported here: only this map mode needs it

    direction = (pos - neg).to(accelerator.device)

    def score(x):
        return F.normalize(model.encode_image(x).float(), dim=-1) @ direction

    cam = LayerGradCam(score, resnet_stage(model, layer))
    out = []
    for start in tqdm(
        range(0, len(split), batch_size),
        desc="grad-cam maps",
        leave=False,
        disable=not accelerator.is_local_main_process,
    ):
        x = torch.stack([transform(split.load(i)) for i in range(start, min(start + batch_size, len(split)))])
        with torch.enable_grad():
            out.append(cam.attribute(x.to(accelerator.device), relu_attributions=True)[:, 0].detach().float().cpu())
    return torch.cat(out)


def normalise_maps(maps: torch.Tensor, size: int) -> torch.Tensor:
    """N x h x w -> N x size x size: bilinear upsampling, then min-max to [0, 1] per image."""
    up = interpolate(maps[:, None].float(), size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    lo = up.flatten(1).min(1).values[:, None, None]
    hi = up.flatten(1).max(1).values[:, None, None]
    return (up - lo) / (hi - lo).clamp_min(1e-8)


def masks_at(split: Split, index, size: int) -> np.ndarray:
    """Ground-truth masks of items `index`, drawn at each image's native size, then resized to
    size x size (nearest)."""
    out = np.zeros((len(index), size, size), dtype=bool)
    for j, i in enumerate(index):
        h, w = split.load(i).shape[-2:]
        m = torch.from_numpy(split.mask(i, (h, w)).astype(np.float32))[None, None]
        out[j] = interpolate(m, size=(size, size), mode="nearest")[0, 0].numpy() > 0.5
    return out


def dice_by_threshold(maps: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """Mean Dice over images for each threshold of THRESHOLDS."""
    m = maps.numpy()
    return np.array([iou_dice(m >= t, masks)[1].mean() for t in THRESHOLDS])


@dataclass
class GroundingResult:
    metrics: dict[str, float]
    threshold_source: str
    cases: list[dict]  # a few test cases for the figure: image, map, prediction, target
    per_image: dict[str, np.ndarray]  # iou, dice (and the random map's) of every positive test image


def score_grounding(
    test_maps: torch.Tensor,
    test_masks: np.ndarray,
    val_maps: torch.Tensor | None,
    val_masks: np.ndarray | None,
    protocol: str,
    size: int,
) -> tuple[dict[str, float], float, str]:
    """IoU/Dice of binarised maps (N x h x w, raw) against masks (N x size x size)."""
    test_n = normalise_maps(test_maps, size)
    if protocol == "paper":
        curve, source = dice_by_threshold(test_n, test_masks), "test"
    elif val_maps is not None and len(val_maps):
        curve, source = dice_by_threshold(normalise_maps(val_maps, size), val_masks), "valid"
    else:
        curve, source = None, "fixed 0.5"
    t = 0.5 if curve is None else float(THRESHOLDS[int(np.argmax(curve))])
    iou, dice = iou_dice(test_n.numpy() >= t, test_masks)
    return {"iou": iou, "dice": dice, "threshold": t}, t, source


def random_maps_like(maps: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(maps.shape, generator=g)


def oracle_maps(masks: np.ndarray, shape) -> torch.Tensor:
    """N x h x w: each mask (N x size x size) averaged over the cells of an h x w grid."""
    return F.adaptive_avg_pool2d(torch.from_numpy(masks).float()[:, None], tuple(shape))[:, 0]


def grounding(
    test_maps: torch.Tensor,
    test_split: Split,
    val_maps: torch.Tensor | None,
    val_split: Split | None,
    protocol: str,
    size: int,
    seed: int = 0,
    n_cases: int = 4,
) -> GroundingResult:
    """Scores maps of the positive images of `test_split` (and the random baseline); the maps and
    splits hold positives only (see `positives`)."""
    test_masks = masks_at(test_split, range(len(test_split)), size)
    val_masks = None if val_split is None else masks_at(val_split, range(len(val_split)), size)
    scored, t, source = score_grounding(test_maps, test_masks, val_maps, val_masks, protocol, size)
    rnd, _, _ = score_grounding(
        random_maps_like(test_maps, seed),
        test_masks,
        None if val_maps is None else random_maps_like(val_maps, seed + 1),
        val_masks,
        protocol,
        size,
    )
    oracle, _, _ = score_grounding(
        oracle_maps(test_masks, test_maps.shape[1:]),
        test_masks,
        None if val_maps is None else oracle_maps(val_masks, val_maps.shape[1:]),
        val_masks,
        protocol,
        size,
    )
    per_image = {
        "iou": scored["iou"],
        "dice": scored["dice"],
        "random_iou": rnd["iou"],
        "random_dice": rnd["dice"],
        "oracle_iou": oracle["iou"],
        "oracle_dice": oracle["dice"],
    }
    metrics = mean_metrics(per_image, seed)
    metrics.update({"threshold": t, "random_threshold": rnd["threshold"], "n_positive": float(len(test_split))})
    cases = []
    norm = normalise_maps(test_maps[:n_cases], size)
    for j in range(min(n_cases, len(test_split))):
        img = test_split.load(j)[None].float()
        img = interpolate(img, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()
        cases.append(
            {
                "image": img,
                "map": norm[j].numpy(),
                "prediction": norm[j].numpy() >= t,
                "target": test_masks[j],
                "id": test_split.ids[j],
            }
        )
    return GroundingResult(metrics, source, cases, per_image)


def mean_metrics(per_image: dict[str, np.ndarray], seed: int) -> dict[str, float]:
    """Means of the per-image scores, with bootstrap intervals over the test images."""
    metrics = {k: float(v.mean()) for k, v in per_image.items()}
    # How far the means could move with other test images: the interval the sweep report compares.
    for k in ("iou", "dice"):
        metrics[f"{k}_ci_low"], metrics[f"{k}_ci_high"] = bootstrap_ci(per_image[k], seed=seed)
    # What the maps add over the floor, paired image by image (the same images resampled for both).
    margin = per_image["dice"] - per_image["random_dice"]
    metrics["dice_over_random"] = float(margin.mean())
    metrics["dice_over_random_ci_low"], metrics["dice_over_random_ci_high"] = bootstrap_ci(margin, seed=seed)
    return metrics


def positives(split: Split, ok: np.ndarray | None = None) -> tuple[Split, np.ndarray]:
    """The positive (non-empty region) images of a split, and their indices."""
    if split.regions is None:
        raise ValueError(f"{split.source}: grounding needs ground-truth regions (boxes or masks)")
    return _select(split, split.labels.max(1) > 0, ok)


def negatives(split: Split, ok: np.ndarray | None = None) -> tuple[Split, np.ndarray]:
    """The images of a split without the finding, and their indices: `REFERENCES`' "normal" maps."""
    return _select(split, split.labels.max(1) == 0, ok)


def _select(split: Split, keep: np.ndarray, ok: np.ndarray | None) -> tuple[Split, np.ndarray]:
    if ok is not None:
        keep = keep & ok
    index = np.flatnonzero(keep)
    return split.subset(index), index


# What each map is measured against: "none", the map as drawn; "normal", the map minus the mean map
# of the validation split's images without the finding, so that what a map shows on every chest (a
# side, the mediastinum, the corners) cancels and what this image's finding adds is left
# (docs/evaluation.md#the-grounding-preset).
def minus_reference(maps: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
    """N x h x w maps less an h x w reference map (None: unchanged)."""
    if reference is None:
        return maps
    if reference.shape != maps.shape[1:]:
        raise ValueError(f"reference map {tuple(reference.shape)} does not match maps {tuple(maps.shape[1:])}")
    return maps - reference
