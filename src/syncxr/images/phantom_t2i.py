"""The phantom world's text-to-image "model": renders the findings an IMPRESSION names. Like a real
text-to-image model it reads the prompt itself (with the phantom world's own lexicon).

`RandomizedT2I` is the RaSD-style ablation: the same findings drawn over anatomy and appearance
randomised far beyond the ranges of ordinary radiographs (domain randomisation).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..entities.lexicon_ner import phantom_lexicon_ner
from ..phantom.renderer import render
from ..phantom.scene import Anatomy, Appearance, Finding, sample_scene
from ..phantom.vocabulary import ABNORMALITY, ANATOMY, DISEASE, FINDINGS, SEVERITIES, site_word, term_index

# Surface form -> (finding key, severity level it states or None); diseases map to the finding that
# shows them.
_TERMS = term_index()


def finding_severities(entities: list[dict]) -> dict[str, int | None]:
    """Finding key -> severity level stated by a report's present-finding entities (None: unstated;
    the largest where several are stated)."""
    out: dict[str, int | None] = {}
    for e in entities:
        if e["type"] in (ABNORMALITY, DISEASE) and e["name"] in _TERMS:
            key, level = _TERMS[e["name"]]
            out[key] = level if out.get(key) is None else max(out[key], level if level is not None else -1)
    return out


def findings_from_entities(entities: list[dict]) -> tuple[list[str], list[str]]:
    """(finding keys present, anatomy names) of a report's entities."""
    return sorted(finding_severities(entities)), [e["name"] for e in entities if e["type"] == ANATOMY]


def _randomize(anatomy: Anatomy, appearance: Appearance, rng: np.random.Generator):
    scale = lambda v, s: v * float(rng.uniform(1 - s, 1 + s))  # noqa: E731
    a = replace(
        anatomy,
        body_rx=scale(anatomy.body_rx, 0.15),
        lung_rx=scale(anatomy.lung_rx, 0.2),
        lung_ry=scale(anatomy.lung_ry, 0.15),
        heart_ry=scale(anatomy.heart_ry, 0.2),
        rib_spacing=scale(anatomy.rib_spacing, 0.3),
        shift_x=float(rng.uniform(-0.05, 0.05)),
    )
    ap = replace(
        appearance,
        exposure=float(rng.uniform(0.6, 1.5)),
        contrast=float(rng.uniform(0.5, 2.0)),
        noise_sigma=float(rng.uniform(0.0, 0.08)),
        blur_sigma=float(rng.uniform(0.0, 2.0)),
    )
    return a, ap


class PhantomT2I:
    name = "phantom"
    quality: dict = {}  # measured figures (syncxr.backends); a learned preset's factory sets its own
    randomized = False

    def __init__(self, image_size: int):
        self.ner, self.image_size = phantom_lexicon_ner(), image_size

    def generate(self, prompts: list[str], seeds: list[int]) -> list[np.ndarray]:
        out = []
        for prompt, seed in zip(prompts, seeds):
            rng = np.random.default_rng([seed, 5])
            entities = self.ner.extract(prompt)
            severities = finding_severities(entities)
            anatomy = [e["name"] for e in entities if e["type"] == ANATOMY]
            scene = sample_scene(rng, sorted(severities))
            # Honour the named anatomy and severity where the finding can be drawn so.
            placed = []
            for f in scene.findings:
                site = next((s for s in FINDINGS[f.key].sites if site_word(s) in anatomy), f.site)
                level = severities[f.key]
                placed.append(Finding(f.key, site, f.severity if level is None else SEVERITIES[level], f.u))
            scene = replace(scene, findings=tuple(placed))
            if self.randomized:
                a, ap = _randomize(scene.anatomy, scene.appearance, rng)
                scene = replace(scene, anatomy=a, appearance=ap)
            out.append(render(scene, self.image_size)[0])
        return out

    def counters(self) -> dict:
        return {}  # no transport to count


class RandomizedT2I(PhantomT2I):
    name = "randomized"
    randomized = True
