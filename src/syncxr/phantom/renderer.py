"""Draws a phantom chest radiograph and one pixel mask per finding from a `Scene`.

The image is composed as a density map (bright = dense, as on a radiograph), then passed through the
scene's acquisition appearance. Every random texture is seeded from the scene alone, and each finding
from its own stable seed, so removing a finding changes only the pixels it drew.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.ndimage import gaussian_filter

from .scene import Anatomy, Finding, Scene

# Densities of the tissues (the scale of the composed map, before exposure and gamma).
AIR, SOFT_TISSUE, LUNG, MEDIASTINUM, HEART, FLUID = 0.03, 0.42, 0.13, 0.56, 0.6, 0.5


class Grid:
    """Normalised pixel-centre coordinates of a square image."""

    def __init__(self, size: int):
        self.size = size
        c = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.y, self.x = np.meshgrid(c, c, indexing="ij")

    def ellipse(self, cx, cy, rx, ry) -> np.ndarray:
        return ((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2 <= 1.0

    def segment_distance(self, x0, y0, x1, y1) -> np.ndarray:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((self.x - x0) * dx + (self.y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        return np.hypot(self.x - (x0 + t * dx), self.y - (y0 + t * dy))


def smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Zero-mean unit-variance noise with correlation length `scale` (fraction of the image)."""
    n = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), scale * size)
    return (n - n.mean()) / (n.std() + 1e-8)


def _stable_seed(*parts) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


class ChestGeometry:
    """Masks of the anatomy of one scene; named sites resolve to regions of these masks."""

    def __init__(self, a: Anatomy, grid: Grid, heart_scale: tuple[float, float] = (1.0, 1.0)):
        g = self.grid = grid
        self.a = a
        self.mid = 0.5 + a.shift_x
        self.body = g.ellipse(self.mid, 0.55 + a.shift_y, a.body_rx, a.body_ry)
        self.lung = {}
        self.lung_centre = {}
        for side, sign, dome in (("right", -1, a.dome_right), ("left", 1, a.dome_left)):
            cx, cy = self.mid + sign * a.lung_cx_offset, a.lung_cy + a.shift_y
            dome_y = dome + a.shift_y + 0.08 * ((g.x - cx) / a.lung_rx) ** 2
            self.lung[side] = g.ellipse(cx, cy, a.lung_rx, a.lung_ry) & (g.y < dome_y)
            self.lung_centre[side] = (cx, cy)
        self.lungs = self.lung["right"] | self.lung["left"]
        hx, hy = heart_scale
        self.heart = g.ellipse(a.heart_cx + a.shift_x, a.heart_cy + a.shift_y,
                               a.heart_rx * hx, a.heart_ry * hy)

    def lung_band(self, side: str, y_lo: float, y_hi: float) -> np.ndarray:
        """Part of a lung between two fractions of its height (0 = apex, 1 = base)."""
        _, cy = self.lung_centre[side]
        top, h = cy - self.a.lung_ry, 2 * self.a.lung_ry
        return self.lung[side] & (self.grid.y >= top + y_lo * h) & (self.grid.y < top + y_hi * h)

    def site(self, name: str) -> np.ndarray:
        side = "right" if name.startswith("right") else "left"
        if name.endswith("upper lobe"):
            return self.lung_band(side, 0.0, 0.38 if side == "right" else 0.5)
        if name == "right middle lobe":
            return self.lung_band("right", 0.38, 0.62)
        if name.endswith("lower lobe"):
            return self.lung_band(side, 0.62 if side == "right" else 0.5, 1.0)
        if name.endswith("lung base"):
            return self.lung_band(side, 0.75, 1.0)
        if name == "lingula":
            cx, _ = self.lung_centre["left"]
            return self.lung_band("left", 0.45, 0.7) & (self.grid.x < cx)
        if name.endswith("apex"):
            return self.lung_band(side, 0.0, 0.45)
        raise KeyError(f"unknown anatomy site {name!r}")

    def point_in(self, region: np.ndarray, u: float) -> tuple[float, float]:
        ys, xs = np.nonzero(region)
        if len(ys) == 0:
            raise ValueError("empty anatomy region (image too small?)")
        i = min(int(u * len(ys)), len(ys) - 1)
        return float(self.grid.x[ys[i], xs[i]]), float(self.grid.y[ys[i], xs[i]])


def _draw_finding(f: Finding, geo: ChestGeometry, d: np.ndarray, size: int) -> np.ndarray:
    """Adds finding `f` to density map `d` in place; returns its mask."""
    g, a = geo.grid, geo.a
    sev = ("small", "moderate", "large").index(f.severity)
    rng = np.random.default_rng(_stable_seed(f.key, f.site, f.u))
    if f.key == "pleural_effusion":
        mask = np.zeros_like(geo.lungs)
        sides = ("right", "left") if f.site == "bilateral" else (f.site.split()[0],)
        for side in sides:
            cx, cy = geo.lung_centre[side]
            level = cy + a.lung_ry - (0.07, 0.12, 0.19)[sev]
            lateral = np.clip((g.x - cx) * (-1 if side == "right" else 1) / a.lung_rx, 0, 1)
            mask |= geo.lung[side] & (g.y > level - 0.06 * lateral)  # meniscus rises laterally
        d[mask] = 0.1 * d[mask] + 0.9 * FLUID
        return mask
    if f.key == "pneumothorax":
        side = f.site.split()[0]
        cx, cy = geo.lung_centre[side]
        m = (0.035, 0.055, 0.08)[sev]
        shift = m if side == "right" else -m  # the collapsed lung falls towards the hilum
        collapsed = g.ellipse(cx + shift, cy + m, a.lung_rx - m, a.lung_ry - m)
        mask = geo.lung[side] & ~collapsed & (g.y < cy + 0.1)
        d[mask] = LUNG - 0.06  # free air: darker, no lung markings
        edge = collapsed & ~g.ellipse(cx + shift, cy + m, a.lung_rx - m - 1.5 / size,
                                      a.lung_ry - m - 1.5 / size)
        line = edge & (g.y < cy + 0.1)
        d[line] += 0.18  # the visceral pleural line
        return mask | line
    if f.key == "cardiomegaly":
        return geo.heart.copy()  # the widened heart is drawn by render() through heart_scale
    if f.key == "edema":
        w = np.zeros_like(d)
        for side in ("right", "left"):
            cx, cy = geo.lung_centre[side]
            hx = geo.mid + (cx - geo.mid) * 0.45
            w = np.maximum(w, np.exp(-((g.x - hx) ** 2 + (g.y - cy) ** 2) / (2 * 0.12 ** 2)))
        reticular = 0.7 + 0.3 * smooth_noise(rng, size, 0.012)
        w = np.clip((w - 0.15) / 0.85, 0.0, 1.0)  # the haze ends where its mask ends
        d += geo.lungs * w * reticular * (0.26, 0.32, 0.38)[sev]
        return geo.lungs & (w > 0)
    if f.key == "consolidation":
        px, py = geo.point_in(geo.site(f.site), f.u[0])
        r = (0.065, 0.085, 0.11)[sev]
        blob = np.exp(-((g.x - px) ** 2 + (g.y - py) ** 2) / r ** 2)
        field = blob * (1.0 + 0.35 * smooth_noise(rng, size, 0.025))  # irregular, but local
        mask = geo.lungs & (field > 0.4)
        d[mask] += 0.4 * np.clip(field[mask], 0.4, 1.0)
        return mask
    if f.key == "atelectasis":
        px, py = geo.point_in(geo.site(f.site), f.u[0])
        ang = np.deg2rad(-15 + 35 * f.u[1])
        half = 0.1
        dist = g.segment_distance(px - half * np.cos(ang), py - half * np.sin(ang),
                                  px + half * np.cos(ang), py + half * np.sin(ang))
        mask = geo.lungs & (dist < (0.016, 0.021, 0.027)[sev])
        d[mask] += 0.36
        return mask
    if f.key == "nodule":
        px, py = geo.point_in(geo.site(f.site), f.u[0])
        r = (0.022, 0.03, 0.038)[sev]
        rr = np.hypot(g.x - px, g.y - py)
        mask = rr < r
        d[mask] += 0.32
        return mask
    if f.key == "support_device":
        tip = 0.24 + 0.06 * f.u[0] + a.shift_y
        x0 = geo.mid + 0.004 * (f.u[1] - 0.5)
        mask = (np.abs(g.x - x0) < 0.018) & (g.y < tip)
        walls = mask & (np.abs(np.abs(g.x - x0) - 0.012) < 0.006)
        d[walls] += 0.45
        d[mask & (g.y > tip - 0.012)] += 0.45  # radiopaque tip
        return mask
    raise KeyError(f"unknown finding {f.key!r}")


def _draw_frontal(scene: Scene, grid: Grid) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    a, size = scene.anatomy, grid.size
    card = next((f for f in scene.findings if f.key == "cardiomegaly"), None)
    heart_scale = (1.0, 1.0) if card is None else (
        (1.3, 1.42, 1.55)[("small", "moderate", "large").index(card.severity)], 1.12)
    geo = ChestGeometry(a, grid, heart_scale)
    g = grid
    tex = np.random.default_rng(scene.appearance.texture_seed)

    d = np.full((size, size), AIR, np.float32)
    d[geo.body] = SOFT_TISSUE
    d[geo.body & (g.y > max(a.dome_right, a.dome_left) + a.shift_y)] = SOFT_TISSUE + 0.08
    # Lung markings: vessels fan out from the hila and fade towards the periphery.
    markings = np.zeros_like(d)
    for side in ("right", "left"):
        cx, cy = geo.lung_centre[side]
        hila = np.hypot(g.x - (geo.mid + (cx - geo.mid) * 0.4), g.y - cy)
        markings += geo.lung[side] * np.exp(-hila / 0.14)
    vessels = np.clip(smooth_noise(tex, size, 0.008), 0, None)
    d[geo.lungs] = LUNG
    d += 0.07 * markings * vessels
    mediastinum = (np.abs(g.x - geo.mid) < 0.06) & (g.y < a.heart_cy + a.shift_y) & (g.y > 0.05)
    d[mediastinum & geo.body] = MEDIASTINUM
    d[geo.heart] = HEART
    spine = np.abs(g.x - geo.mid) < a.spine_width / 2
    d += spine * geo.body * (0.1 + 0.04 * np.cos(g.y * 2 * np.pi / 0.045))
    dx = np.abs(g.x - geo.mid)
    for k in range(10):  # posterior ribs: arcs that fall away from the spine
        y_rib = 0.14 + a.shift_y + k * a.rib_spacing - 0.05 * dx + a.rib_curvature * 0.35 * dx ** 2
        rib = (np.abs(g.y - y_rib) < 0.011) & (dx < 0.36) & (dx > a.spine_width / 2) & geo.body
        d += 0.06 * rib
    for sign in (-1, 1):  # clavicles
        cl = g.segment_distance(geo.mid + sign * 0.05, a.clavicle_y + 0.03 + a.shift_y,
                                geo.mid + sign * 0.3, a.clavicle_y - 0.02 + a.shift_y)
        d += 0.14 * (cl < 0.012)

    masks = {}
    for f in scene.findings:
        m = _draw_finding(f, geo, d, size)
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
    noise_rng = np.random.default_rng(_stable_seed("noise", ap.texture_seed))
    img = img + ap.noise_sigma * noise_rng.standard_normal(img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), masks
