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
from ..phantom.vocabulary import ABNORMALITY, ANATOMY, DISEASE, FINDING_SITES, FINDINGS, INFERRED_DISEASE

# Surface form -> finding key (diseases map to the finding that shows them).
_TERM_TO_KEY = {s: t.key for t in FINDINGS.values() for s in t.synonyms}
_TERM_TO_KEY.update({d: k for k, d in INFERRED_DISEASE.items()})


def findings_from_entities(entities: list[dict]) -> tuple[list[str], list[str]]:
    """(finding keys present, anatomy names) of a report's entities."""
    keys = sorted({_TERM_TO_KEY[e["name"]] for e in entities
                   if e["type"] in (ABNORMALITY, DISEASE) and e["name"] in _TERM_TO_KEY})
    return keys, [e["name"] for e in entities if e["type"] == ANATOMY]


def _randomize(anatomy: Anatomy, appearance: Appearance, rng: np.random.Generator):
    scale = lambda v, s: v * float(rng.uniform(1 - s, 1 + s))  # noqa: E731
    a = replace(anatomy, body_rx=scale(anatomy.body_rx, 0.15), lung_rx=scale(anatomy.lung_rx, 0.2),
                lung_ry=scale(anatomy.lung_ry, 0.15), heart_ry=scale(anatomy.heart_ry, 0.2),
                rib_spacing=scale(anatomy.rib_spacing, 0.3), shift_x=float(rng.uniform(-0.05, 0.05)))
    ap = replace(appearance, exposure=float(rng.uniform(0.6, 1.5)), contrast=float(rng.uniform(0.5, 2.0)),
                 noise_sigma=float(rng.uniform(0.0, 0.08)), blur_sigma=float(rng.uniform(0.0, 2.0)))
    return a, ap


class PhantomT2I:
    name = "phantom"
    randomized = False

    def __init__(self, image_size: int):
        self.ner, self.image_size = phantom_lexicon_ner(), image_size

    def generate(self, prompts: list[str], seeds: list[int]) -> list[np.ndarray]:
        out = []
        for prompt, seed in zip(prompts, seeds):
            rng = np.random.default_rng([seed, 5])
            keys, anatomy = findings_from_entities(self.ner.extract(prompt))
            scene = sample_scene(rng, keys)
            # Honour the named anatomy where the finding can be drawn there.
            placed = []
            for f in scene.findings:
                site = next((a for a in anatomy if a in FINDING_SITES[f.key]), f.site)
                placed.append(Finding(f.key, site, f.severity, f.u))
            scene = replace(scene, findings=tuple(placed))
            if self.randomized:
                a, ap = _randomize(scene.anatomy, scene.appearance, rng)
                scene = replace(scene, anatomy=a, appearance=ap)
            out.append(render(scene, self.image_size)[0])
        return out


class RandomizedT2I(PhantomT2I):
    name = "randomized"
    randomized = True
