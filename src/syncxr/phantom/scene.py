"""Random scenes of the phantom world: anatomy, appearance and findings, all from a seeded rng."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .vocabulary import FINDINGS, SEVERITIES


@dataclass(frozen=True)
class Anatomy:
    """Geometry of a frontal chest, in image-normalised coordinates (x right, y down, 0..1)."""

    body_rx: float = 0.44
    body_ry: float = 0.56
    lung_cx_offset: float = 0.19  # distance of each lung centre from the midline
    lung_cy: float = 0.45
    lung_rx: float = 0.145
    lung_ry: float = 0.30
    dome_right: float = 0.70  # y of the right hemidiaphragm apex
    dome_left: float = 0.72
    heart_cx: float = 0.54
    heart_cy: float = 0.6
    heart_rx: float = 0.135
    heart_ry: float = 0.11
    spine_width: float = 0.045
    rib_spacing: float = 0.055
    rib_curvature: float = 1.6
    clavicle_y: float = 0.17
    shift_x: float = 0.0  # patient positioning
    shift_y: float = 0.0


@dataclass(frozen=True)
class Appearance:
    """Acquisition appearance: exposure, contrast, noise, blur and the texture seed."""

    exposure: float = 1.0
    contrast: float = 1.0  # gamma applied to the normalised intensity
    noise_sigma: float = 0.02
    blur_sigma: float = 0.6  # in pixels at the rendered size
    texture_seed: int = 0


@dataclass(frozen=True)
class Finding:
    """One finding at a named site; `u` are uniform draws that place it inside that site."""

    key: str
    site: str
    severity: str = "moderate"
    u: tuple[float, ...] = (0.5, 0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Scene:
    anatomy: Anatomy
    appearance: Appearance
    findings: tuple[Finding, ...] = ()
    view: str = "PA"  # "PA" or "LATERAL" (a wrong view in a frontal corpus)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def finding_keys(self) -> tuple[str, ...]:
        return tuple(sorted({f.key for f in self.findings}))

    def without(self, key: str) -> Scene:
        return replace(self, findings=tuple(f for f in self.findings if f.key != key))


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    j = lambda s: float(rng.normal(0.0, s))  # noqa: E731 - short jitter helper
    return Anatomy(
        body_rx=0.44 + j(0.015),
        body_ry=0.56 + j(0.015),
        lung_cx_offset=0.19 + j(0.008),
        lung_cy=0.45 + j(0.012),
        lung_rx=0.145 + j(0.008),
        lung_ry=0.30 + j(0.012),
        dome_right=0.70 + j(0.012),
        dome_left=0.72 + j(0.012),
        heart_cx=0.54 + j(0.008),
        heart_cy=0.6 + j(0.01),
        heart_rx=0.135 + j(0.007),
        heart_ry=0.11 + j(0.006),
        spine_width=0.045 + j(0.004),
        rib_spacing=0.055 + j(0.003),
        rib_curvature=1.6 + j(0.15),
        clavicle_y=0.17 + j(0.01),
        shift_x=j(0.015),
        shift_y=j(0.015),
    )


def sample_appearance(rng: np.random.Generator, low_quality: bool = False) -> Appearance:
    if low_quality:
        # One of the failure modes seen in real archives: burnt-out, under-exposed, noisy or blurred.
        mode = int(rng.integers(4))
        return Appearance(
            exposure=(1.9, 0.35, 1.0, 1.0)[mode],
            contrast=(0.5, 2.2, 1.0, 1.0)[mode],
            noise_sigma=(0.03, 0.03, 0.22, 0.03)[mode],
            blur_sigma=(0.6, 0.6, 0.6, 4.5)[mode],
            texture_seed=int(rng.integers(2**31)),
        )
    return Appearance(
        exposure=float(rng.uniform(0.85, 1.15)),
        contrast=float(rng.uniform(0.8, 1.25)),
        noise_sigma=float(rng.uniform(0.01, 0.035)),
        blur_sigma=float(rng.uniform(0.3, 1.0)),
        texture_seed=int(rng.integers(2**31)),
    )


def sample_finding(key: str, rng: np.random.Generator) -> Finding:
    if key not in FINDINGS:
        raise KeyError(f"unknown finding {key!r}; known: {sorted(FINDINGS)}")
    sites = FINDINGS[key].sites
    return Finding(
        key=key,
        site=sites[int(rng.integers(len(sites)))],
        severity=SEVERITIES[int(rng.integers(len(SEVERITIES)))],
        u=tuple(float(v) for v in rng.uniform(size=4)),
    )


def sample_scene(rng: np.random.Generator, finding_keys, view: str = "PA", low_quality: bool = False) -> Scene:
    """A random chest carrying exactly `finding_keys` (each drawn at a random site and severity)."""
    anatomy = sample_anatomy(rng)
    appearance = sample_appearance(rng, low_quality)
    findings = tuple(sample_finding(k, rng) for k in sorted(set(finding_keys)))
    return Scene(anatomy=anatomy, appearance=appearance, findings=findings, view=view)
