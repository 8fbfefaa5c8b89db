"""Drawers of the findings in the lungs and pleura. Each takes (finding, geometry, density map, its
own rng, severity level 0-2), adds the finding to the density map in place and returns its mask."""

from __future__ import annotations

import numpy as np

from .draw_common import AIR, FLUID, LUNG, ChestGeometry, sides_of, smooth_noise


def _blob(geo: ChestGeometry, px: float, py: float, r: float) -> np.ndarray:
    g = geo.grid
    return np.exp(-((g.x - px) ** 2 + (g.y - py) ** 2) / r**2)


def pleural_effusion(f, geo, d, rng, sev):
    g, a = geo.grid, geo.a
    mask = np.zeros_like(geo.lungs)
    for side in ("right", "left") if f.site == "bilateral" else (f.site.split()[0],):
        cx, cy = geo.lung_centre[side]
        level = cy + a.lung_ry - (0.07, 0.12, 0.19)[sev]
        lateral = np.clip((g.x - cx) * (-1 if side == "right" else 1) / a.lung_rx, 0, 1)
        mask |= geo.lung[side] & (g.y > level - 0.06 * lateral)  # meniscus rises laterally
    d[mask] = 0.1 * d[mask] + 0.9 * FLUID
    return mask


def pneumothorax(f, geo, d, rng, sev):
    g, a, size = geo.grid, geo.a, geo.grid.size
    side = f.site.split()[0]
    cx, cy = geo.lung_centre[side]
    m = (0.035, 0.055, 0.08)[sev]
    shift = m if side == "right" else -m  # the collapsed lung falls towards the hilum
    collapsed = g.ellipse(cx + shift, cy + m, a.lung_rx - m, a.lung_ry - m)
    mask = geo.lung[side] & ~collapsed & (g.y < cy + 0.1)
    d[mask] = LUNG - 0.06  # free air: darker, no lung markings
    edge = collapsed & ~g.ellipse(cx + shift, cy + m, a.lung_rx - m - 1.5 / size, a.lung_ry - m - 1.5 / size)
    line = edge & (g.y < cy + 0.1)
    d[line] += 0.18  # the visceral pleural line
    return mask | line


def edema(f, geo, d, rng, sev):
    g = geo.grid
    w = np.zeros_like(d)
    for side in ("right", "left"):
        hx, hy = geo.hilum(side)
        w = np.maximum(w, np.exp(-((g.x - hx) ** 2 + (g.y - hy) ** 2) / (2 * 0.12**2)))
    reticular = 0.7 + 0.3 * smooth_noise(rng, g.size, 0.012)
    w = np.clip((w - 0.15) / 0.85, 0.0, 1.0)  # the haze ends where its mask ends
    d += geo.lungs * w * reticular * (0.26, 0.32, 0.38)[sev]
    return geo.lungs & (w > 0)


def consolidation(f, geo, d, rng, sev):
    px, py = geo.point_in(geo.site(f.site), f.u[0])
    field = _blob(geo, px, py, (0.065, 0.085, 0.11)[sev])
    field = field * (1.0 + 0.35 * smooth_noise(rng, geo.grid.size, 0.025))  # irregular, but local
    mask = geo.lungs & (field > 0.4)
    d[mask] += 0.4 * np.clip(field[mask], 0.4, 1.0)
    return mask


def infiltration(f, geo, d, rng, sev):
    """Several faint, patchy, ill-defined opacities scattered over one zone (not one dense blob)."""
    zone = geo.site(f.site)
    field = np.zeros_like(d)
    for u in rng.uniform(size=(3 + sev, 1)):
        px, py = geo.point_in(zone, float(u[0]))
        field = np.maximum(field, _blob(geo, px, py, 0.045))
    field = field * (0.75 + 0.45 * smooth_noise(rng, geo.grid.size, 0.012))
    mask = geo.lungs & (field > 0.35)
    d[mask] += (0.13, 0.16, 0.2)[sev] * np.clip(field[mask], 0.35, 1.0)
    return mask


def pneumonia(f, geo, d, rng, sev):
    """Lobar consolidation filling much of a lobe, crossed by dark air bronchograms."""
    g = geo.grid
    lobe = geo.site(f.site)
    px, py = geo.point_in(lobe, 0.3 + 0.4 * f.u[0])
    mask = lobe & (np.hypot(g.x - px, g.y - py) < (0.12, 0.16, 0.22)[sev])
    d[mask] += 0.36 + 0.04 * smooth_noise(rng, g.size, 0.02)[mask]
    hx, hy = geo.hilum(sides_of(f.site)[0])
    tips = [(px + 0.06 * np.cos(t), py + 0.06 * np.sin(t)) for t in rng.uniform(0, 2 * np.pi, 3)]
    branches = np.min([g.segment_distance(hx, hy, *tip) for tip in tips], axis=0)
    d[mask & (branches < 0.006)] -= 0.22  # air-filled bronchi against the dense lung
    return mask


def atelectasis(f, geo, d, rng, sev):
    g = geo.grid
    px, py = geo.point_in(geo.site(f.site), f.u[0])
    ang, half = np.deg2rad(-15 + 35 * f.u[1]), 0.1
    dist = g.segment_distance(
        px - half * np.cos(ang), py - half * np.sin(ang), px + half * np.cos(ang), py + half * np.sin(ang)
    )
    mask = geo.lungs & (dist < (0.016, 0.021, 0.027)[sev])
    d[mask] += 0.36
    return mask


def nodule(f, geo, d, rng, sev):
    px, py = geo.point_in(geo.site(f.site), f.u[0])
    mask = geo.grid.disk(px, py, (0.022, 0.03, 0.038)[sev])
    d[mask] += 0.32
    return mask


def mass(f, geo, d, rng, sev):
    """A large lobulated opacity, brightest at its centre."""
    g = geo.grid
    px, py = geo.point_in(geo.site(f.site), f.u[0])
    r0 = (0.055, 0.07, 0.09)[sev]
    theta = np.arctan2(g.y - py, g.x - px)
    r = np.hypot(g.x - px, g.y - py)
    edge = r0 * (1 + 0.14 * np.sin(3 * theta + 6.28 * f.u[1]) + 0.06 * np.sin(7 * theta))
    mask = (r < edge) & geo.lungs
    d[mask] += 0.34 + 0.12 * (1 - r[mask] / edge[mask])
    return mask


def calcified_granuloma(f, geo, d, rng, sev):
    """A tiny, calcium-dense round focus: smaller and far brighter than a nodule."""
    px, py = geo.point_in(geo.site(f.site), f.u[0])
    mask = geo.grid.disk(px, py, 0.012 + 0.004 * f.u[1])
    d[mask] += 0.75
    return mask


def cavity(f, geo, d, rng, sev):
    """A thick-walled ring with an air-filled centre."""
    g = geo.grid
    px, py = geo.point_in(geo.site(f.site), 0.2 + 0.6 * f.u[0])
    r_out = (0.035, 0.045, 0.06)[sev]
    r = np.hypot(g.x - px, g.y - py)
    mask = r < r_out
    wall = mask & (r > r_out - 0.014 - 0.004 * sev)
    d[wall] += 0.42
    d[mask & ~wall] = AIR + 0.04
    return mask


def bulla(f, geo, d, rng, sev):
    """A round, very lucent space without lung markings, outlined by a hairline wall."""
    g = geo.grid
    px, py = geo.point_in(geo.site(f.site), 0.1 + 0.3 * f.u[0])
    rr = (0.04, 0.055, 0.07)[sev]
    r = np.hypot(g.x - px, g.y - py)
    mask = (r < rr) & geo.lungs
    d[mask] = AIR + 0.03
    d[mask & (r > rr - 0.008)] += 0.1
    return mask


def miliary_nodules(f, geo, d, rng, sev):
    """Innumerable tiny nodules spread through both lungs."""
    mask = np.zeros_like(geo.lungs)
    for u in rng.uniform(size=120):
        mask |= geo.grid.disk(*geo.point_in(geo.lungs, float(u)), 0.009)
    mask &= geo.lungs
    d[mask] += 0.3
    return mask


def emphysema(f, geo, d, rng, sev):
    """Hyperlucent lungs with fewer markings and flattened, lowered hemidiaphragms."""
    g, a = geo.grid, geo.a
    drop = (0.025, 0.04, 0.055)[sev]
    mask = np.zeros_like(geo.lungs)
    for side in ("right", "left"):
        cx, cy = geo.lung_centre[side]
        flat_dome = geo.dome[side] - (geo.dome[side] - geo.dome[side].min()) * 0.6 + drop
        extension = g.ellipse(cx, cy + drop, a.lung_rx, a.lung_ry + drop) & (g.y < flat_dome) & ~geo.lung[side]
        d[extension] = LUNG
        mask |= geo.lung[side] | extension
    d[mask] -= (0.03, 0.04, 0.05)[sev] + 0.6 * geo.markings[mask]
    return mask


def fibrosis(f, geo, d, rng, sev):
    """Coarse reticular lines over a faint haze, at the periphery of the lung bases."""
    g, a = geo.grid, geo.a
    mask = np.zeros_like(geo.lungs)
    for side in sides_of(f.site):
        cx, _ = geo.lung_centre[side]
        mask |= geo.lung_band(side, 0.5, 1.0) & (np.abs(g.x - cx) > 0.25 * a.lung_rx)
    ridges = np.abs(smooth_noise(rng, g.size, 0.01)) < 0.45
    d[mask] += 0.05 + (0.14, 0.19, 0.25)[sev] * ridges[mask]
    return mask


def pleural_thickening(f, geo, d, rng, sev):
    """An apical cap: a dense band along the top of the lung, inside the pleura."""
    g, a = geo.grid, geo.a
    side = sides_of(f.site)[0]
    cx, cy = geo.lung_centre[side]
    t = (0.014, 0.02, 0.028)[sev]
    mask = geo.lung_band(side, 0.0, 0.3) & ~g.ellipse(cx, cy + t * 0.5, a.lung_rx - t, a.lung_ry - t)
    d[mask] += 0.3
    return mask


LUNG_DRAWERS = {
    f.__name__: f
    for f in (
        pleural_effusion,
        pneumothorax,
        edema,
        consolidation,
        infiltration,
        pneumonia,
        atelectasis,
        nodule,
        mass,
        calcified_granuloma,
        cavity,
        bulla,
        miliary_nodules,
        emphysema,
        fibrosis,
        pleural_thickening,
    )
}
