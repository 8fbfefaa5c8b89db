"""Writes FINDINGS and IMPRESSION for a phantom scene, recording each entity with its RaTE type.

Phrasing is drawn at random (synonyms, modifiers, sentence templates, which absent findings are
negated, which normal structures are mentioned), so two reports of the same ground truth differ in
wording but never in content. A finding's phrase is a synonym, alone or with one modifier: its
severity as worded for the scene's severity level, a descriptor or a word of change ("new").
Sentences are assembled from templates whose fields are the entities, in order, so the recorded
entities are exactly what a reader of the text finds; where each entity was placed is recorded too
(`Report.spans`: character spans per section, the truth a learned NER trains on).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np

from .scene import Finding, Scene
from .vocabulary import (
    ABNORMALITY,
    ANATOMY,
    DEVICES,
    DISEASE,
    FINDINGS,
    NEGATED_TYPE,
    SEVERITIES,
    FindingTerm,
    site_word,
)

POSITIVE = (
    "There is {p} {prep} the {site}.",
    "{p} {prep} the {site}.",
    "{p} is seen {prep} the {site}.",
    "{p} is noted {prep} the {site}.",
)
BILATERAL = ("There are {p}s at both {site}.", "Bilateral {p}s blunt both {site}.")
# Optional endings naming one more structure.
SUFFIX = {
    "pneumothorax": (" with a visible {extra}", "pleural line"),
    "central_venous_catheter": (", terminating in the {extra}", "superior vena cava"),
    "pacemaker": (" with leads in the {extra}", "heart"),
}
NEGATION = ("No {x}.", "There is no {x}.", "No evidence of {x}.")
NEGATION_PAIR = ("No {x} or {y}.", "There is no {x} or {y}.")
IMPRESSION = ("{p}.", "{p} {prep} the {site}.")
INFERRED = ("{p}, concerning for {disease}.", "{p}, consistent with {disease}.")
NORMAL_IMPRESSIONS = (
    "No acute cardiopulmonary process.",
    "Normal chest radiograph.",
    "No acute intrathoracic abnormality.",
)
# Normal statements (anatomy only), each made unless one of the findings listed is present.
NORMAL_STATEMENTS = (
    (
        "The {a} is within normal limits.",
        "cardiomediastinal silhouette",
        {"cardiomegaly", "widened_mediastinum", "tortuous_aorta", "hilar_enlargement"},
    ),
    ("The {a} are intact.", "osseous structures", {"rib_fracture", "clavicle_fracture", "scoliosis"}),
    ("The {a} is midline.", "trachea", {"endotracheal_tube", "widened_mediastinum"}),
    ("The {a} is unremarkable.", "visualized upper abdomen", {"pneumoperitoneum", "hernia", "nasogastric_tube"}),
    (
        "The {a} are well defined.",
        "hemidiaphragms",
        {"elevated_hemidiaphragm", "pneumoperitoneum", "emphysema", "pleural_plaques", "pleural_effusion"},
    ),
)
LUNG_FINDINGS = {k for k in FINDINGS if k not in DEVICES} - {
    "rib_fracture",
    "clavicle_fracture",
    "scoliosis",
    "tortuous_aorta",
    "widened_mediastinum",
    "hernia",
    "pneumoperitoneum",
    "subcutaneous_emphysema",
    "cardiomegaly",
    "elevated_hemidiaphragm",
}
_FORMATTER = string.Formatter()


@dataclass
class Report:
    findings: str
    impression: str
    entities: list[dict] = field(default_factory=list)  # [{name, type}], in order of appearance
    # section ("findings" | "impression") -> [(start, end, RaTE type)]: every placement of an entity,
    # in order; text[start:end] is the entity's name (as cased in the text)
    spans: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)


class _Sentence(str):
    """A sentence and the character spans (start, end, type) of the entities placed in it."""

    spans: tuple[tuple[int, int, str], ...] = ()


def _join(sentences: list[str]) -> tuple[str, list[tuple[int, int, str]]]:
    """The sentences joined by single spaces, with their entity spans moved to the joined text."""
    spans, offset = [], 0
    for s in sentences:
        spans += [(offset + a, offset + b, t) for a, b, t in getattr(s, "spans", ())]
        offset += len(s) + 1
    return " ".join(sentences), spans


class _EntityLog:
    def __init__(self):
        self.items: list[dict] = []

    def add(self, name: str, etype: str) -> None:
        item = {"name": name.lower(), "type": etype}
        if item not in self.items:
            self.items.append(item)

    def sentence(self, template: str, **slots) -> str:
        """`template` filled from `slots` (field -> (text, RaTE type or None)); entities are logged in
        the order their fields appear."""
        out, spans, at = [], [], 0
        for literal, name, _, _ in _FORMATTER.parse(template):
            out.append(literal)
            at += len(literal)
            if name is not None:
                text, etype = slots[name]
                out.append(text)
                if etype is not None:
                    self.add(text, etype)
                    spans.append((at, at + len(text), etype))
                at += len(text)
        s = "".join(out)
        sentence = _Sentence(s[0].upper() + s[1:])
        sentence.spans = tuple(spans)
        return sentence


def _choice(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def finding_phrase(t: FindingTerm, severity: str, rng: np.random.Generator, p_modifier: float = 0.6) -> str:
    """A synonym of `t`, alone or with one modifier true to the drawn `severity`."""
    term = _choice(rng, t.synonyms)
    if rng.random() >= p_modifier:
        return term
    pools = [
        p
        for p in (
            (t.severity_words[SEVERITIES.index(severity)],) if t.severity_words else (),
            t.descriptors,
            t.temporal,
        )
        if p
    ]
    return f"{_choice(rng, _choice(rng, pools))} {term}" if pools else term


def _positive(f: Finding, rng, log: _EntityLog) -> str:
    t = FINDINGS[f.key]
    p = (finding_phrase(t, f.severity, rng), t.entity_type)
    site = (site_word(f.site), ANATOMY)
    if f.site == "bilateral":
        return log.sentence(_choice(rng, BILATERAL), p=p, site=site)
    template = _choice(rng, POSITIVE)
    if f.key in SUFFIX and rng.random() < 0.5:
        ending, extra = SUFFIX[f.key]
        return log.sentence(template[:-1] + ending + ".", p=p, prep=(t.prep, None), site=site, extra=(extra, ANATOMY))
    return log.sentence(template, p=p, prep=(t.prep, None), site=site)


def _negations(absent: list[str], rng, log: _EntityLog, negation_rate: float) -> list[str]:
    negated = [k for k in absent if rng.random() < negation_rate * FINDINGS[k].negation_weight]
    rng.shuffle(negated)
    out = []
    while negated:
        t = FINDINGS[negated.pop()]
        x = (_choice(rng, t.synonyms), NEGATED_TYPE[t.entity_type])
        if negated and rng.random() < 0.5:
            t2 = FINDINGS[negated.pop()]
            y = (_choice(rng, t2.synonyms), NEGATED_TYPE[t2.entity_type])
            out.append(log.sentence(_choice(rng, NEGATION_PAIR), x=x, y=y))
        else:
            out.append(log.sentence(_choice(rng, NEGATION), x=x))
    return out


def _impression(scene: Scene, rng, log: _EntityLog) -> list[str]:
    """The present findings in fewer words, some with a disease they suggest."""
    out = []
    for f in sorted(scene.findings, key=lambda f: f.key):
        t = FINDINGS[f.key]
        if f.key in DEVICES and rng.random() < 0.5:
            continue  # lines and tubes are often left out of the impression
        p = (finding_phrase(t, f.severity, rng), t.entity_type)
        if t.disease and rng.random() < 0.5:
            out.append(log.sentence(_choice(rng, INFERRED), p=p, disease=(t.disease, DISEASE)))
        elif f.site != "bilateral" and rng.random() < 0.3:
            out.append(log.sentence(IMPRESSION[1], p=p, prep=(t.prep, None), site=(site_word(f.site), ANATOMY)))
        else:
            out.append(log.sentence(IMPRESSION[0], p=p))
    return out if out else [_choice(rng, NORMAL_IMPRESSIONS)]


def write_report(scene: Scene, rng: np.random.Generator, negation_rate: float = 0.5) -> Report:
    """FINDINGS and IMPRESSION for `scene`. `negation_rate` scales how often absent findings are
    stated negative (each finding's own `negation_weight` says how usual that statement is)."""
    log = _EntityLog()
    present = {f.key for f in scene.findings}
    sentences = [_positive(f, rng, log) for f in sorted(scene.findings, key=lambda f: rng.random())]
    sentences += _negations([k for k in FINDINGS if k not in present], rng, log, negation_rate)
    for template, anatomy, unless in NORMAL_STATEMENTS:
        if not present & unless and rng.random() < 0.35:
            sentences.append(log.sentence(template, a=(anatomy, ANATOMY)))
    if not present & LUNG_FINDINGS and (not sentences or rng.random() < 0.5):
        sentences.insert(0, log.sentence("The {a} are clear.", a=("lungs", ANATOMY)))
    findings_text, findings_spans = _join(sentences)
    impression_text, impression_spans = _join(_impression(scene, rng, log))
    spans = {"findings": findings_spans, "impression": impression_spans}
    return Report(findings_text, impression_text, log.items, spans)


# For entity sets given from outside (entities_text): a finding with no structure left to place it
# in, and a structure no finding is placed in (the writer's own normal statements name fixed ones).
UNPLACED = ("There is {p}.", "{p} is seen.", "{p} is noted.")
NORMAL_ANY = ("The {a} is unremarkable.", "The {a} is within normal limits.", "The {a} is normal.")
NORMAL_ANY_PLURAL = ("The {a} are unremarkable.", "The {a} are within normal limits.", "The {a} are normal.")


def _prep_of(name: str) -> str:
    """The preposition of the finding one of whose synonyms ends `name` (the longest), else "in"."""
    best, prep = 0, "in"
    for t in FINDINGS.values():
        for syn in t.synonyms:
            if len(syn) > best and (name == syn or name.endswith(" " + syn)):
                best, prep = len(syn), t.prep
    return prep


def entities_text(entities: list[dict], section: str, rng: np.random.Generator) -> str:
    """A FINDINGS or IMPRESSION text naming exactly `entities` ([{name, type}], any combination),
    written with this writer's templates: each present finding (ABNORMALITY, DISEASE) placed in the
    next listed structure (FINDINGS: a positive template; IMPRESSION: "{p} {prep} the {site}."), or
    stated alone when none is left; the negated ones in negations (two to a sentence at times); the
    structures left over in normal statements. In the order of `entities` within each group."""
    log = _EntityLog()
    present = [(e["name"], e["type"]) for e in entities if e["type"] in (ABNORMALITY, DISEASE)]
    negated = [(e["name"], e["type"]) for e in entities if e["type"] in NEGATED_TYPE.values()]
    sites = [(e["name"], ANATOMY) for e in entities if e["type"] == ANATOMY]
    sentences = []
    for i, p in enumerate(present):
        if i < len(sites):
            template = IMPRESSION[1] if section == "impression" else _choice(rng, POSITIVE)
            sentences.append(log.sentence(template, p=p, prep=(_prep_of(p[0]), None), site=sites[i]))
        else:
            template = IMPRESSION[0] if section == "impression" else _choice(rng, UNPLACED)
            sentences.append(log.sentence(template, p=p))
    while negated:
        x = negated.pop(0)
        if negated and rng.random() < 0.5:
            sentences.append(log.sentence(_choice(rng, NEGATION_PAIR), x=x, y=negated.pop(0)))
        else:
            sentences.append(log.sentence(_choice(rng, NEGATION), x=x))
    for a in sites[len(present) :]:
        normal = NORMAL_ANY_PLURAL if a[0].endswith("s") and not a[0].endswith("ss") else NORMAL_ANY
        sentences.append(log.sentence(_choice(rng, normal), a=a))
    return _join(sentences)[0]
