"""Writes FINDINGS and IMPRESSION for a phantom scene, recording each entity with its RaTE type.

Phrasing is drawn at random (synonyms, sentence templates, which absent findings are negated), so
two reports of the same ground truth differ in wording but never in content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .scene import Finding, Scene
from .vocabulary import (ANATOMY, DISEASE, FINDINGS, INFERRED_DISEASE, NEGATED_TYPE)

# Severity as radiologists word it for each finding (index = scene severity small/moderate/large).
SEVERITY_WORDS = {
    "cardiomegaly": ("mild", "moderate", "severe"),
    "edema": ("mild", "moderate", "severe"),
    "pneumothorax": ("small", "moderate", "large"),
}
DEFAULT_SEVERITY_WORDS = ("small", "moderate", "large")

# Positive sentences; {sev} severity, {term} surface form, {site} anatomy.
POSITIVE_TEMPLATES = {
    "consolidation": ("There is {sev} {term} in the {site}.", "{Sev} {term} is seen in the {site}.",
                      "{Sev} {site} {term}."),
    "pleural_effusion": ("A {sev} {term} blunts the {site}.", "{Sev} {term} at the {site}.",
                         "There is a {sev} {term} at the {site}."),
    "pneumothorax": ("There is a {sev} {term} at the {site}.", "{Sev} {site} {term} with a visible "
                     "pleural line."),
    "cardiomegaly": ("The {site} is enlarged, consistent with {sev} {term}.", "{Sev} {term}.",
                     "There is {sev} {term} of the {site}."),
    "edema": ("There is {sev} {term}, most pronounced around the {site}.",
              "{Sev} {term} with haziness around the {site}."),
    "atelectasis": ("{Sev} {term} in the {site}.", "There is {sev} {term} at the {site}."),
    "nodule": ("A {sev} {term} is seen in the {site}.", "There is a {sev} {term} in the {site}."),
    "support_device": ("An {term} terminates in the {site}.", "The {term} is in the {site}."),
}
# Articles in front of the term would be wrong for these forms ("A support device" is fine).
NEGATION_TEMPLATES = ("No {term}.", "There is no {term}.", "No evidence of {term}.")
NEGATION_PAIR_TEMPLATES = ("No {term} or {term2}.", "There is no {term} or {term2}.")
NORMAL_IMPRESSIONS = ("No acute cardiopulmonary process.", "Normal chest radiograph.",
                      "No acute intrathoracic abnormality.")
# Sites whose report wording differs from the renderer's site name.
SITE_WORDS = {"bilateral": "costophrenic angles"}


@dataclass
class Report:
    findings: str
    impression: str
    entities: list[dict] = field(default_factory=list)  # [{name, type}], in order of appearance


class _EntityLog:
    def __init__(self):
        self.items: list[dict] = []

    def add(self, name: str, etype: str) -> None:
        item = {"name": name.lower(), "type": etype}
        if item not in self.items:
            self.items.append(item)


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _capitalise(sentence: str) -> str:
    return sentence[0].upper() + sentence[1:]


def _positive_sentence(f: Finding, rng, log: _EntityLog, term: str) -> str:
    t = FINDINGS[f.key]
    sev = SEVERITY_WORDS.get(f.key, DEFAULT_SEVERITY_WORDS)[("small", "moderate", "large").index(f.severity)]
    site = SITE_WORDS.get(f.site, f.site)
    template = _choice(rng, POSITIVE_TEMPLATES[f.key])
    if f.site == "bilateral":
        template, term = "Bilateral {term}s blunt both {site}.", term
    text = template.replace("{Sev}", sev.capitalize()).format(sev=sev, term=term, site=site)
    # Order entities as they appear in the sentence.
    spans = sorted(((text.lower().find(s), s, ty) for s, ty in
                    ((term, t.entity_type), (site, ANATOMY)) if "{site}" in template or s == term))
    for _, s, ty in spans:
        log.add(s, ty)
    if "pleural line" in text:
        log.add("pleural line", ANATOMY)
    return _capitalise(text)


def write_report(scene: Scene, rng: np.random.Generator, negation_rate: float = 0.5) -> Report:
    """FINDINGS and IMPRESSION for `scene`. `negation_rate`: share of absent findings stated negative."""
    log = _EntityLog()
    present = {f.key for f in scene.findings}
    sentences = []
    for f in sorted(scene.findings, key=lambda f: rng.random()):
        sentences.append(_positive_sentence(f, rng, log, _choice(rng, FINDINGS[f.key].synonyms)))
    absent = [k for k in FINDINGS if k not in present and k != "support_device"]
    negated = [k for k in absent if rng.random() < negation_rate]
    rng.shuffle(negated)
    while negated:
        k = negated.pop()
        term = _choice(rng, FINDINGS[k].synonyms)
        log.add(term, NEGATED_TYPE[FINDINGS[k].entity_type])
        if negated and rng.random() < 0.5:
            k2 = negated.pop()
            term2 = _choice(rng, FINDINGS[k2].synonyms)
            log.add(term2, NEGATED_TYPE[FINDINGS[k2].entity_type])
            sentences.append(_choice(rng, NEGATION_PAIR_TEMPLATES).format(term=term, term2=term2))
        else:
            sentences.append(_choice(rng, NEGATION_TEMPLATES).format(term=term))
    if "cardiomegaly" not in present and rng.random() < 0.6:
        sentences.append("The cardiomediastinal silhouette is within normal limits.")
        log.add("cardiomediastinal silhouette", ANATOMY)
    findings_text = " ".join(sentences) if sentences else "The lungs are clear."
    if not sentences:
        log.add("lungs", ANATOMY)

    # IMPRESSION: the positive findings in fewer words, with diseases they suggest.
    impression = []
    for f in sorted(scene.findings, key=lambda f: f.key):
        if f.key == "support_device":
            continue
        term = _choice(rng, FINDINGS[f.key].synonyms)
        log.add(term, FINDINGS[f.key].entity_type)
        sentence = _capitalise(term)
        disease = INFERRED_DISEASE.get(f.key)
        if disease and rng.random() < 0.5:
            sentence += f", concerning for {disease}"
            log.add(disease, DISEASE)
        impression.append(sentence + ".")
    if not impression:
        impression.append(_choice(rng, NORMAL_IMPRESSIONS))
    return Report(findings_text, " ".join(impression), log.items)
