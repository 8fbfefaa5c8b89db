"""The grounding maps and baselines on planted cases: occlusion and Grad-CAM maps find the region a
model's score depends on; the oracle baseline is the ground truth averaged over the map's grid."""

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from syncxr.eval.grounding import (
    combine_prompt_maps,
    gradcam_maps,
    minus_reference,
    occlusion_maps,
    oracle_maps,
    score_grounding,
)


class BrightPatchModel(torch.nn.Module):
    """Scores an image by the brightness of rows 8-15, columns 16-23 of its 32 x 32 input."""

    def encode_image(self, x):
        patch = x[:, 0, 8:16, 16:24].mean((1, 2))
        return torch.stack([patch, torch.ones_like(patch)], dim=1)


def test_occlusion_finds_the_cells_the_score_depends_on():
    images = [torch.full((1, 32, 32), 40, dtype=torch.uint8) for _ in range(2)]
    for im in images:
        im[:, 8:16, 16:24] = 250  # the "finding" lies in cell (1, 2) of a 4 x 4 grid
    split = type("S", (), {"load": staticmethod(lambda i: images[i]), "__len__": lambda self: 2})()
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    maps = occlusion_maps(
        BrightPatchModel(), split, lambda im: im.float() / 255, pos, neg, Accelerator(cpu=True), grid=4, batch_size=5
    )
    assert maps.shape == (2, 4, 4)
    peak = np.unravel_index(int(maps[0].argmax()), (4, 4))
    assert tuple(int(v) for v in peak) == (1, 2) and maps[0][1, 2] > 0
    others = maps[0].flatten()[torch.arange(16) != 6]
    assert torch.all(others.abs() < 1e-6)  # occluding anything else changes nothing
    with pytest.raises(ValueError, match="occlusion_grid"):
        occlusion_maps(BrightPatchModel(), split, lambda im: im.float() / 255, pos, neg, Accelerator(cpu=True), grid=0)


class Stage(torch.nn.Module):
    """Two channels: brightness above mid-grey (the "finding" detector) and below it (background)."""

    def forward(self, x):
        return torch.cat([torch.relu(x - 0.5), torch.relu(0.5 - x)], dim=1)


class BrightStageModel(torch.nn.Module):
    """A ResNet-shaped tower (`image_encoder.net.layer3`) whose embedding is the mean of the stage's
    first channel: the score depends on the bright cells only."""

    def __init__(self):
        super().__init__()
        self.image_encoder = torch.nn.Module()
        self.image_encoder.has_resnet_stages = True  # declared, as models/protocols.py's ImageEncoder does
        self.image_encoder.net = torch.nn.Module()
        self.image_encoder.net.layer3 = Stage()

    def encode_image(self, x):
        bright = self.image_encoder.net.layer3(x)[:, 0].mean((1, 2))
        return torch.stack([bright, torch.ones_like(bright)], dim=1)


def test_gradcam_weights_the_stage_channels_the_score_depends_on():
    images = [torch.full((1, 16, 16), 40, dtype=torch.uint8) for _ in range(2)]
    images[0][:, 4:8, 8:12] = 250
    images[1][:, 12:16, 0:4] = 250
    split = type("S", (), {"load": staticmethod(lambda i: images[i]), "__len__": lambda self: 2})()
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    maps = gradcam_maps(
        BrightStageModel(),
        split,
        lambda im: im.float() / 255,
        pos,
        neg,
        Accelerator(cpu=True),
        layer="layer3",
        batch_size=1,
    )
    assert maps.shape == (2, 16, 16)
    for m, (rows, cols) in zip(maps, ((slice(4, 8), slice(8, 12)), (slice(12, 16), slice(0, 4)))):
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[rows, cols] = True
        assert m[inside].min() > 0 and torch.all(m[~inside] == 0)  # the background channel has no weight
    with pytest.raises(ValueError, match="gradcam_layer='layer9'"):
        gradcam_maps(
            BrightStageModel(), split, lambda im: im.float() / 255, pos, neg, Accelerator(cpu=True), layer="layer9"
        )


def test_the_oracle_map_is_the_mask_averaged_over_the_grid_and_bounded_by_the_grid():
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, :4, :4] = True  # exactly one cell of a 2 x 2 grid
    grid = oracle_maps(masks, (2, 2))
    assert torch.equal(grid, torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]))
    aligned, _, _ = score_grounding(grid, masks, None, None, "val", 8)
    assert aligned["dice"][0] > 0.95  # all but the bilinear blur at the cell's edge
    masks[0, :2, :2] = False  # three quarters of the cell: the grid cannot draw the notch
    notched, _, _ = score_grounding(oracle_maps(masks, (2, 2)), masks, None, None, "val", 8)
    assert 0.5 < notched["dice"][0] < aligned["dice"][0] - 0.05


def test_the_normal_reference_cancels_what_every_chest_shows_and_leaves_the_finding():
    # Every map lights the left half (what the model shows on any chest); each positive image's
    # finding adds a bump in one of the four right-hand cells, which a threshold of the raw map misses.
    gen = torch.Generator().manual_seed(0)
    bias = torch.zeros(4, 4)
    bias[:, :2] = 1.0
    normal_maps = bias + 0.05 * torch.randn(20, 4, 4, generator=gen)  # images without the finding
    cells = [(0, 2), (1, 3), (2, 2), (3, 3)] * 3
    maps = bias + 0.05 * torch.randn(len(cells), 4, 4, generator=gen)
    masks = np.zeros((len(cells), 16, 16), dtype=bool)
    for j, (r, c) in enumerate(cells):
        maps[j, r, c] += 0.8
        masks[j, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = True
    raw, _, _ = score_grounding(maps, masks, maps, masks, "val", 16)
    reference = normal_maps.mean(0)
    centred = minus_reference(maps, reference)
    assert torch.equal(minus_reference(maps, None), maps)
    fixed, _, _ = score_grounding(centred, masks, centred, masks, "val", 16)
    assert raw["dice"].mean() < 0.35 and fixed["dice"].mean() > 0.6, (raw["dice"].mean(), fixed["dice"].mean())
    with pytest.raises(ValueError, match="does not match"):
        minus_reference(maps, reference[:2])


def test_each_prompts_map_keeps_its_own_peak_under_the_max_and_is_averaged_under_the_mean():
    # "right {}" lights the right upper cell, "left {}" the left one: the max keeps both peaks at full
    # height (the finding's side is then whichever the image lifts), the mean halves them.
    right, left = torch.zeros(3, 4, 4), torch.zeros(3, 4, 4)
    right[:, 0, 3], left[:, 0, 0] = 1.0, 0.8
    best, mean = (
        combine_prompt_maps(torch.stack([right, left]), "max"),
        combine_prompt_maps(torch.stack([right, left]), "mean"),
    )
    assert best.shape == (3, 4, 4) and (best[:, 0, 3] == 1.0).all() and (best[:, 0, 0] == 0.8).all()
    assert torch.allclose(mean, (right + left) / 2) and torch.equal(best, torch.maximum(right, left))
    with pytest.raises(ValueError, match="prompts.ensemble must be one of"):
        combine_prompt_maps(torch.stack([right, left]), "median")
