"""Drawers of the findings outside the lung parenchyma: devices, bones, mediastinum, diaphragm and
abdomen, chest wall. Same contract as `draw_lung`: (finding, geometry, density map, rng, severity
level) -> mask, drawing in place. Cardiomegaly is drawn by the renderer (it changes the heart)."""

from __future__ import annotations

import numpy as np

from .draw_common import AIR, LUNG, MEDIASTINUM, SOFT_TISSUE, ChestGeometry, side_sign, sides_of, smooth_noise


def _line(geo: ChestGeometry, d: np.ndarray, points, width: float, density: float) -> np.ndarray:
    mask = geo.grid.polyline_distance(points) < width
    d[mask] += density
    return mask


# -- devices ---------------------------------------------------------------------------------
def endotracheal_tube(f, geo, d, rng, sev):
    g, a = geo.grid, geo.a
    tip = 0.24 + 0.06 * f.u[0] + a.shift_y
    x0 = geo.mid + 0.004 * (f.u[1] - 0.5)
    mask = (np.abs(g.x - x0) < 0.018) & (g.y < tip)
    walls = mask & (np.abs(np.abs(g.x - x0) - 0.012) < 0.006)
    d[walls] += 0.45
    d[mask & (g.y > tip - 0.012)] += 0.45  # radiopaque tip
    return mask


def central_venous_catheter(f, geo, d, rng, sev):
    """A thin line from the subclavian vein, over the clavicle, down to the superior vena cava."""
    s, a = side_sign(sides_of(f.site)[0]), geo.a
    y_cl = a.clavicle_y + a.shift_y
    svc = (geo.mid - 0.035, 0.34 + 0.05 * f.u[0] + a.shift_y)  # the SVC lies right of the midline
    points = [
        (geo.mid + s * 0.3, y_cl + 0.03),
        (geo.mid + s * 0.12, y_cl + 0.05),
        (svc[0] + 0.01 * s, y_cl + 0.09),
        svc,
    ]
    return _line(geo, d, points, 0.007, 0.45)


def nasogastric_tube(f, geo, d, rng, sev):
    """Down the oesophagus, through the hiatus, its tip in the stomach (patient left, below the dome)."""
    a = geo.a
    below = a.dome_left + a.shift_y + 0.05
    points = [
        (geo.mid + 0.004, 0.0),
        (geo.mid + 0.012, 0.4 + a.shift_y),
        (geo.mid + 0.03, below),
        (geo.mid + 0.1 + 0.06 * f.u[0], below + 0.05),
    ]
    return _line(geo, d, points, 0.006, 0.45)


def pacemaker(f, geo, d, rng, sev):
    """A dense generator below the clavicle with one, two or three leads into the heart."""
    g, a = geo.grid, geo.a
    s = side_sign(sides_of(f.site)[0])
    gx, gy = geo.mid + s * (0.22 + 0.04 * f.u[0]), a.clavicle_y + 0.08 + a.shift_y
    generator = (np.abs(g.x - gx) < 0.04) & (np.abs(g.y - gy) < 0.028)
    d[generator] += 0.7
    mask = generator.copy()
    heart = (a.heart_cx + a.shift_x, a.heart_cy + a.shift_y)
    for k in range(sev + 1):  # right atrium, right ventricle, coronary sinus
        tip = (heart[0] - 0.05 + 0.05 * k, heart[1] - 0.04 + 0.04 * k)
        mask |= _line(geo, d, [(gx, gy), (geo.mid - 0.02, gy + 0.08), tip], 0.005, 0.4)
    return mask


def sternotomy_wires(f, geo, d, rng, sev):
    """Five or six twisted wire loops in a column over the sternum."""
    g, a = geo.grid, geo.a
    mask = np.zeros_like(geo.lungs)
    n = 5 + int(f.u[0] > 0.5)
    for y in np.linspace(0.24, 0.52, n) + a.shift_y:
        ring = ((g.x - geo.mid) / 0.014) ** 2 + ((g.y - y) / 0.008) ** 2
        mask |= (ring > 0.35) & (ring < 1.3)
    d[mask] += 0.6
    return mask


def chest_tube(f, geo, d, rng, sev):
    """A wide tube entering the lateral chest wall and running up towards the apex."""
    s = side_sign(sides_of(f.site)[0])
    a = geo.a
    points = [
        (geo.mid + s * 0.42, 0.64 + a.shift_y),
        (geo.mid + s * 0.3, 0.56 + a.shift_y),
        (geo.mid + s * (0.18 + 0.04 * f.u[0]), 0.24 + a.shift_y),
    ]
    dist = geo.grid.polyline_distance(points)
    mask = dist < 0.011
    d[mask & (dist > 0.005)] += 0.42  # radiopaque walls around a lucent lumen
    d[mask & (dist <= 0.005)] += 0.1
    return mask


# -- bones -----------------------------------------------------------------------------------
def rib_fracture(f, geo, d, rng, sev):
    """A cortical break in a rib: a gap, sclerotic fragment ends and, when displaced, a step."""
    g = geo.grid
    side, n = f.site.split()[0], int(f.site.split()[1][:-2])
    s = side_sign(side)
    xf = geo.mid + s * (0.2 + 0.1 * f.u[0])
    near = np.abs(g.x - xf) < 0.035
    step = (0.0, 0.007, 0.014)[sev]
    rib, moved = geo.rib_band(n - 1), geo.rib_band(n - 1, step)
    lateral = (g.x - xf) * s > 0
    d[rib & near & lateral] -= 0.06  # the lateral fragment leaves its place ...
    d[moved & near & lateral] += 0.06  # ... and lies `step` lower
    mask = (rib | moved) & near
    d[mask & (np.abs(g.x - xf) < 0.006)] = np.minimum(d[mask & (np.abs(g.x - xf) < 0.006)], LUNG)  # the gap
    d[mask & (np.abs(g.x - xf) >= 0.006)] += 0.12  # sclerotic, callus-dense fragment ends
    return mask


def clavicle_fracture(f, geo, d, rng, sev):
    g = geo.grid
    side = sides_of(f.site)[0]
    (x0, y0), (x1, y1) = geo.clavicle_ends(side)
    t_f = 0.4 + 0.3 * f.u[0]
    xf, yf = x0 + t_f * (x1 - x0), y0 + t_f * (y1 - y0)
    step = (0.0, 0.01, 0.02)[sev]
    bone = geo.clavicle(side)
    along = (g.x - xf) * (x1 - x0) + (g.y - yf) * (y1 - y0) > 0  # the lateral fragment
    moved = (g.segment_distance(xf, yf + step, x1, y1 + step) < 0.012) & along
    near = np.hypot(g.x - xf, g.y - yf) < 0.07
    d[bone & along & near] -= 0.14
    d[moved & near] += 0.14
    mask = (bone | moved) & near
    gap = mask & (np.hypot(g.x - xf, g.y - yf) < 0.01)
    d[gap] -= 0.12
    d[mask & ~gap] += 0.1
    return mask


def scoliosis(f, geo, d, rng, sev):
    """The vertebral column bowed to one side (its straight course replaced)."""
    g = geo.grid
    amp = (0.02, 0.032, 0.045)[sev] * (1 if f.u[0] > 0.5 else -1)
    offset = amp * np.sin(np.pi * np.clip((g.y - 0.08) / 0.84, 0, 1))
    straight, curved = geo.spine_density(np.zeros_like(g.y)), geo.spine_density(offset)
    d += curved - straight
    return ((straight > 0) | (curved > 0)) & (np.abs(curved - straight) > 0)


# -- mediastinum, hila ---------------------------------------------------------------------------
def hilar_enlargement(f, geo, d, rng, sev):
    g = geo.grid
    mask = np.zeros_like(geo.lungs)
    for side in sides_of(f.site.replace("bilateral ", "")):
        hx, hy = geo.hilum(side)
        r = np.hypot(g.x - hx, g.y - hy)
        edge = (0.035, 0.045, 0.055)[sev] * (1 + 0.15 * np.sin(4 * np.arctan2(g.y - hy, g.x - hx)))
        mask |= r < edge
    d[mask] += 0.24
    return mask


def widened_mediastinum(f, geo, d, rng, sev):
    g, a = geo.grid, geo.a
    w = (0.025, 0.04, 0.055)[sev]
    dx = np.abs(g.x - geo.mid)
    mask = (dx >= 0.06) & (dx < 0.06 + w) & (g.y > 0.1 + a.shift_y) & (g.y < a.heart_cy - 0.5 * a.heart_ry + a.shift_y)
    mask &= geo.body
    d[mask] = MEDIASTINUM + 0.02
    return mask


def tortuous_aorta(f, geo, d, rng, sev):
    """A prominent aortic knob bulging into the left upper lung."""
    g, a = geo.grid, geo.a
    r = (0.03, 0.04, 0.05)[sev]
    mask = g.ellipse(geo.mid + 0.06, 0.28 + a.shift_y, r, 0.035) & ~geo.mediastinum
    d[mask] = MEDIASTINUM
    return mask


# -- diaphragm, abdomen, chest wall, pleura ------------------------------------------------------------
def hernia(f, geo, d, rng, sev):
    """A hiatal hernia: a round retrocardiac gas bubble with a horizontal air-fluid level."""
    g, a = geo.grid, geo.a
    cx, cy = geo.mid + 0.03, a.heart_cy + a.shift_y + 0.02
    r = (0.045, 0.058, 0.072)[sev]
    mask = g.ellipse(cx, cy, r, 0.8 * r)
    d[mask & (g.y < cy + 0.1 * r)] = AIR + 0.12  # gas above the level
    d[mask & (g.y >= cy + 0.1 * r)] = SOFT_TISSUE + 0.2  # fluid below it
    return mask


def pneumoperitoneum(f, geo, d, rng, sev):
    """Free air: a dark crescent just beneath a hemidiaphragm."""
    g, a = geo.grid, geo.a
    side = sides_of(f.site)[0]
    cx, _ = geo.lung_centre[side]
    dome = geo.dome[side]
    mask = (g.y > dome + 0.006) & (g.y < dome + (0.018, 0.028, 0.04)[sev]) & (np.abs(g.x - cx) < 0.85 * a.lung_rx)
    mask &= geo.body
    d[mask] = AIR + 0.05
    return mask


def elevated_hemidiaphragm(f, geo, d, rng, sev):
    """The lung base replaced by abdominal density below a dome raised by a severity-set height."""
    side = sides_of(f.site)[0]
    mask = geo.lung[side] & (geo.grid.y > geo.dome[side] - (0.04, 0.065, 0.09)[sev])
    d[mask] = SOFT_TISSUE + 0.08
    return mask


def subcutaneous_emphysema(f, geo, d, rng, sev):
    """Streaks of gas in the soft tissue of the lateral chest wall."""
    g, a = geo.grid, geo.a
    s = side_sign(sides_of(f.site)[0])
    outside = (g.x - geo.mid) * s > a.lung_cx_offset + 0.85 * a.lung_rx
    extent = (0.18, 0.28, 0.4)[sev]
    region = geo.body & outside & (g.y > 0.45 - extent) & (g.y < 0.45 + extent)
    streaks = smooth_noise(rng, g.size, (0.03, 0.006))
    mask = region & (streaks > 0.3)
    d[mask] -= 0.3 * np.clip((streaks[mask] - 0.1) / 0.8, 0.25, 1.0)
    return mask


def pleural_plaques(f, geo, d, rng, sev):
    """Calcified plaques: short, very dense bands along a hemidiaphragm and the lateral pleura."""
    g, a = geo.grid, geo.a
    side = sides_of(f.site)[0]
    cx, cy = geo.lung_centre[side]
    mask = np.zeros_like(geo.lungs)
    for u in rng.uniform(-0.8, 0.8, size=4):
        x = cx + u * a.lung_rx
        y = float(a.dome_right if side == "right" else a.dome_left) + a.shift_y + 0.08 * u**2 - 0.012
        mask |= g.ellipse(x, y, 0.028, 0.008)
    d[mask] += 0.5
    return mask


OTHER_DRAWERS = {
    f.__name__: f
    for f in (
        endotracheal_tube,
        central_venous_catheter,
        nasogastric_tube,
        pacemaker,
        sternotomy_wires,
        chest_tube,
        rib_fracture,
        clavicle_fracture,
        scoliosis,
        hilar_enlargement,
        widened_mediastinum,
        tortuous_aorta,
        hernia,
        pneumoperitoneum,
        elevated_hemidiaphragm,
        subcutaneous_emphysema,
        pleural_plaques,
    )
}
