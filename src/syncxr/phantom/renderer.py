"""Draws a phantom chest radiograph and one pixel mask per finding from a `Scene`.

The image is composed as a density map (bright = dense, as on a radiograph), then passed through the
scene's acquisition appearance. Every random texture is seeded from the scene alone, and each finding
from its own stable seed, so removing a finding changes only the pixels it drew. Sites are resolved
on the scene's normal anatomy, so a finding that changes the anatomy (a larger heart, a raised
hemidiaphragm) never moves another finding.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .draw_common import AIR, HEART, LUNG, MEDIASTINUM, SOFT_TISSUE, ChestGeometry, Grid, smooth_noise, stable_seed
from .draw_lung import LUNG_DRAWERS
from .draw_other import OTHER_DRAWERS
from .scene import Finding, Scene

DRAWERS = {**LUNG_DRAWERS, **OTHER_DRAWERS}


def _draw_finding(f: Finding, geo: ChestGeometry, d: np.ndarray) -> np.ndarray:
    """Adds finding `f` to density map `d` in place; returns its mask."""
    if f.key not in DRAWERS:
        raise KeyError(f"unknown finding {f.key!r}")
    rng = np.random.default_rng(stable_seed(f.key, f.site, f.u))
    return DRAWERS[f.key](f, geo, d, rng, ("small", "moderate", "large").index(f.severity))


def _draw_frontal(scene: Scene, grid: Grid) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    a, size = scene.anatomy, grid.size
    card = next((f for f in scene.findings if f.key == "cardiomegaly"), None)
    heart_scale = (
        (1.0, 1.0) if card is None else ((1.3, 1.42, 1.55)[("small", "moderate", "large").index(card.severity)], 1.12)
    )
    geo = ChestGeometry(a, grid)
    g = grid
    tex = np.random.default_rng(scene.appearance.texture_seed)

    d = np.full((size, size), AIR, np.float32)
    d[geo.body] = SOFT_TISSUE
    d[geo.body & (g.y > max(a.dome_right, a.dome_left) + a.shift_y)] = SOFT_TISSUE + 0.08
    # Lung markings: vessels fan out from the hila and fade towards the periphery.
    markings = np.zeros_like(d)
    for side in ("right", "left"):
        cx, cy = geo.lung_centre[side]
        hila = np.hypot(g.x - geo.hilum(side)[0], g.y - cy)
        markings += geo.lung[side] * np.exp(-hila / 0.14)
    geo.markings = 0.07 * markings * np.clip(smooth_noise(tex, size, 0.008), 0, None)
    d[geo.lungs] = LUNG
    d += geo.markings
    d[geo.mediastinum & geo.body] = MEDIASTINUM
    heart = (
        geo.heart
        if card is None
        else g.ellipse(
            a.heart_cx + a.shift_x, a.heart_cy + a.shift_y, a.heart_rx * heart_scale[0], a.heart_ry * heart_scale[1]
        )
    )
    d[heart] = HEART
    d += geo.spine_density(np.zeros_like(g.y))
    d += geo.rib_density()
    for side in ("right", "left"):
        d += 0.14 * geo.clavicle(side)

    masks = {}
    for f in scene.findings:
        m = heart.copy() if f.key == "cardiomegaly" else _draw_finding(f, geo, d)
        masks[f.key] = masks[f.key] | m if f.key in masks else m
    return d, masks


def _draw_lateral(scene: Scene, grid: Grid) -> np.ndarray:
    """A lateral projection: what a wrong-view image of a frontal corpus looks like."""
    a, g, size = scene.anatomy, grid, grid.size
    tex = np.random.default_rng(scene.appearance.texture_seed)
    d = np.full((size, size), AIR, np.float32)
    body = g.ellipse(0.5 + a.shift_x, 0.55, 0.36, 0.56)
    d[body] = SOFT_TISSUE
    lung = g.ellipse(0.52 + a.shift_x, 0.45, 0.24, 0.3) & (g.y < 0.72)
    d[lung] = LUNG + 0.04 * np.clip(smooth_noise(tex, size, 0.01), 0, None)[lung]
    d[g.ellipse(0.38 + a.shift_x, 0.6, 0.12, 0.13)] = HEART
    d[(np.abs(g.x - 0.78 - a.shift_x) < 0.05) & body] += 0.15  # spine seen side-on, at the back
    d[(np.abs(g.x - 0.2 - a.shift_x) < 0.012) & (g.y > 0.25) & (g.y < 0.65)] += 0.12  # sternum
    return d


def render(scene: Scene, size: int = 128) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Renders `scene` as a uint8 image of `size`² pixels and boolean masks keyed by finding."""
    grid = Grid(size)
    if scene.view == "PA":
        d, masks = _draw_frontal(scene, grid)
    elif scene.view == "LATERAL":
        d, masks = _draw_lateral(scene, grid), {}
    else:
        raise ValueError(f"unknown view {scene.view!r}; expected 'PA' or 'LATERAL'")
    ap = scene.appearance
    img = np.clip(d * ap.exposure, 0.0, 1.0) ** ap.contrast
    img = gaussian_filter(img, ap.blur_sigma * size / 128.0)
    noise_rng = np.random.default_rng(stable_seed("noise", ap.texture_seed))
    img = img + ap.noise_sigma * noise_rng.standard_normal(img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), masks
