"""Geometry shared by the phantom renderer and the finding drawers: the pixel grid, tissue densities,
the anatomy of one scene and how named sites resolve to regions of it."""

from __future__ import annotations

import zlib

import numpy as np
from scipy.ndimage import gaussian_filter

from .scene import Anatomy

# Densities of the tissues (the scale of the composed map, before exposure and gamma).
AIR, SOFT_TISSUE, LUNG, MEDIASTINUM, HEART, FLUID = 0.03, 0.42, 0.13, 0.56, 0.6, 0.5
N_RIBS = 10  # posterior ribs drawn, 1st to 10th


class Grid:
    """Normalised pixel-centre coordinates of a square image."""

    def __init__(self, size: int):
        self.size = size
        c = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.y, self.x = np.meshgrid(c, c, indexing="ij")

    def ellipse(self, cx, cy, rx, ry) -> np.ndarray:
        return ((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2 <= 1.0

    def disk(self, cx, cy, r) -> np.ndarray:
        return np.hypot(self.x - cx, self.y - cy) < r

    def segment_distance(self, x0, y0, x1, y1) -> np.ndarray:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((self.x - x0) * dx + (self.y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        return np.hypot(self.x - (x0 + t * dx), self.y - (y0 + t * dy))

    def polyline_distance(self, points) -> np.ndarray:
        """Distance of every pixel to a polyline through `points` [(x, y), ...]."""
        return np.min([self.segment_distance(*p, *q) for p, q in zip(points[:-1], points[1:])], axis=0)


def smooth_noise(rng: np.random.Generator, size: int, scale) -> np.ndarray:
    """Zero-mean unit-variance noise with correlation length `scale` (fraction of the image; a pair
    (sy, sx) gives streaks)."""
    sigma = tuple(s * size for s in scale) if isinstance(scale, tuple) else scale * size
    n = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), sigma)
    return (n - n.mean()) / (n.std() + 1e-8)


def stable_seed(*parts) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


def side_sign(side: str) -> int:
    """Patient right is image left (the radiograph is viewed facing the patient)."""
    return -1 if side == "right" else 1


def sides_of(site: str) -> tuple[str, ...]:
    if site.startswith("right"):
        return ("right",)
    if site.startswith("left"):
        return ("left",)
    return ("right", "left")


class ChestGeometry:
    """Masks of the normal anatomy of one scene; named sites resolve to regions of these masks."""

    def __init__(self, a: Anatomy, grid: Grid):
        g = self.grid = grid
        self.a = a
        self.mid = 0.5 + a.shift_x
        self.body = g.ellipse(self.mid, 0.55 + a.shift_y, a.body_rx, a.body_ry)
        self.lung, self.lung_centre, self.dome = {}, {}, {}
        for side, dome in (("right", a.dome_right), ("left", a.dome_left)):
            cx, cy = self.mid + side_sign(side) * a.lung_cx_offset, a.lung_cy + a.shift_y
            self.dome[side] = dome + a.shift_y + 0.08 * ((g.x - cx) / a.lung_rx) ** 2
            self.lung[side] = g.ellipse(cx, cy, a.lung_rx, a.lung_ry) & (g.y < self.dome[side])
            self.lung_centre[side] = (cx, cy)
        self.lungs = self.lung["right"] | self.lung["left"]
        self.heart = g.ellipse(a.heart_cx + a.shift_x, a.heart_cy + a.shift_y, a.heart_rx, a.heart_ry)
        self.mediastinum = (np.abs(g.x - self.mid) < 0.06) & (g.y < a.heart_cy + a.shift_y) & (g.y > 0.05)
        self.markings = np.zeros_like(g.x)  # set by the renderer: the lung markings it drew

    def hilum(self, side: str) -> tuple[float, float]:
        cx, cy = self.lung_centre[side]
        return self.mid + (cx - self.mid) * 0.42, cy

    def lung_band(self, side: str, y_lo: float, y_hi: float) -> np.ndarray:
        """Part of a lung between two fractions of its height (0 = apex, 1 = base)."""
        _, cy = self.lung_centre[side]
        top, h = cy - self.a.lung_ry, 2 * self.a.lung_ry
        return self.lung[side] & (self.grid.y >= top + y_lo * h) & (self.grid.y < top + y_hi * h)

    def site(self, name: str) -> np.ndarray:
        """The lung region of a named lung site (lobes, zones, apices, bases, lingula)."""
        sides = sides_of(name)
        side = sides[0]
        if name.endswith("upper lobe"):
            return self.lung_band(side, 0.0, 0.38 if side == "right" else 0.5)
        if name == "right middle lobe":
            return self.lung_band("right", 0.38, 0.62)
        if name.endswith("lower lobe"):
            return self.lung_band(side, 0.62 if side == "right" else 0.5, 1.0)
        for zone, (lo, hi) in {"upper zone": (0.0, 0.36), "mid zone": (0.33, 0.67), "lower zone": (0.64, 1.0)}.items():
            if name.endswith(zone):
                return self.lung_band(side, lo, hi)
        if name.endswith(("lung base", "lung bases")):
            return np.any([self.lung_band(s, 0.72, 1.0) for s in sides], axis=0)
        if name == "lingula":
            cx, _ = self.lung_centre["left"]
            return self.lung_band("left", 0.45, 0.7) & (self.grid.x < cx)
        if name.endswith("apex"):
            return self.lung_band(side, 0.0, 0.45)
        if name == "both lungs":
            return self.lungs
        raise KeyError(f"unknown lung site {name!r}")

    def point_in(self, region: np.ndarray, u: float) -> tuple[float, float]:
        ys, xs = np.nonzero(region)
        if len(ys) == 0:
            raise ValueError("empty anatomy region (image too small?)")
        i = min(int(u * len(ys)), len(ys) - 1)
        return float(self.grid.x[ys[i], xs[i]]), float(self.grid.y[ys[i], xs[i]])

    def spine_density(self, offset: np.ndarray) -> np.ndarray:
        """The vertebral column's density with its centre line shifted by `offset` (per pixel)."""
        g, a = self.grid, self.a
        spine = np.abs(g.x - self.mid - offset) < a.spine_width / 2
        return spine * self.body * (0.1 + 0.04 * np.cos(g.y * 2 * np.pi / 0.045))

    def rib_y(self, k: int, dx: np.ndarray) -> np.ndarray:
        """Centre line of posterior rib k (0 = 1st) at distance `dx` from the midline."""
        a = self.a
        return 0.14 + a.shift_y + k * a.rib_spacing - 0.05 * dx + a.rib_curvature * 0.35 * dx**2

    def rib_band(self, k: int, dy: float = 0.0) -> np.ndarray:
        g = self.grid
        dx = np.abs(g.x - self.mid)
        return (np.abs(g.y - self.rib_y(k, dx) - dy) < 0.011) & (dx < 0.36) & (dx > self.a.spine_width / 2) & self.body

    def rib_density(self) -> np.ndarray:
        return 0.06 * np.sum([self.rib_band(k) for k in range(N_RIBS)], axis=0)

    def clavicle_ends(self, side: str) -> tuple[tuple[float, float], tuple[float, float]]:
        s, a = side_sign(side), self.a
        return (
            (self.mid + s * 0.05, a.clavicle_y + 0.03 + a.shift_y),
            (self.mid + s * 0.3, a.clavicle_y - 0.02 + a.shift_y),
        )

    def clavicle(self, side: str) -> np.ndarray:
        (x0, y0), (x1, y1) = self.clavicle_ends(side)
        return self.grid.segment_distance(x0, y0, x1, y1) < 0.012
