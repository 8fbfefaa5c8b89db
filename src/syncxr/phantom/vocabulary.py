"""Entity vocabulary of the phantom world: findings, their surface forms and RaTE types."""

from __future__ import annotations

from dataclasses import dataclass

# The five RaTE-NER entity types used throughout the project.
ABNORMALITY = "ABNORMALITY"
NON_ABNORMALITY = "NON-ABNORMALITY"
DISEASE = "DISEASE"
NON_DISEASE = "NON-DISEASE"
ANATOMY = "ANATOMY"
ENTITY_TYPES = (ABNORMALITY, NON_ABNORMALITY, DISEASE, NON_DISEASE, ANATOMY)
NEGATED_TYPE = {ABNORMALITY: NON_ABNORMALITY, DISEASE: NON_DISEASE}


@dataclass(frozen=True)
class FindingTerm:
    """A finding the renderer can draw and the report writer can name."""

    key: str  # identifier used in labels and masks
    canonical: str  # the name used in zero-shot prompts
    entity_type: str  # ABNORMALITY or DISEASE when present
    synonyms: tuple[str, ...]  # surface forms, the canonical one first


FINDINGS: dict[str, FindingTerm] = {
    t.key: t
    for t in (
        FindingTerm("consolidation", "consolidation", ABNORMALITY,
                    ("consolidation", "airspace consolidation", "airspace opacity")),
        FindingTerm("pleural_effusion", "pleural effusion", ABNORMALITY,
                    ("pleural effusion", "effusion", "pleural fluid")),
        FindingTerm("pneumothorax", "pneumothorax", DISEASE, ("pneumothorax",)),
        FindingTerm("cardiomegaly", "cardiomegaly", DISEASE,
                    ("cardiomegaly", "cardiac enlargement")),
        FindingTerm("edema", "edema", DISEASE,
                    ("pulmonary edema", "interstitial edema", "edema")),
        FindingTerm("atelectasis", "atelectasis", ABNORMALITY,
                    ("atelectasis", "plate-like atelectasis", "subsegmental atelectasis")),
        FindingTerm("nodule", "nodule", ABNORMALITY,
                    ("nodule", "pulmonary nodule", "nodular opacity")),
        FindingTerm("support_device", "support device", ABNORMALITY,
                    ("endotracheal tube", "support device", "tracheal tube")),
    )
}
FINDING_KEYS = tuple(FINDINGS)

# Diseases a reader infers in the impression from a finding (e.g. consolidation -> pneumonia).
INFERRED_DISEASE = {"consolidation": "pneumonia", "edema": "heart failure"}

# Named anatomy: where a finding can be placed, and how it is written in a report.
LOBES = ("right upper lobe", "right middle lobe", "right lower lobe",
         "left upper lobe", "left lower lobe")
SIDES = ("right", "left")
# Where each finding may be placed (anatomy names appear verbatim in reports).
FINDING_SITES: dict[str, tuple[str, ...]] = {
    "consolidation": LOBES,
    "pleural_effusion": ("right costophrenic angle", "left costophrenic angle", "bilateral"),
    "pneumothorax": ("right apex", "left apex"),
    "cardiomegaly": ("cardiac silhouette",),
    "edema": ("hila",),
    "atelectasis": ("right lower lobe", "left lower lobe", "right lung base", "left lung base",
                    "lingula"),
    "nodule": LOBES,
    "support_device": ("trachea",),
}
SEVERITIES = ("small", "moderate", "large")

# Anatomy named in reports besides the finding sites.
EXTRA_ANATOMY = ("cardiac silhouette", "cardiomediastinal silhouette", "pleural line",
                 "costophrenic angles", "lungs", "hila")


def phantom_lexicon() -> dict[str, str]:
    """Every surface form the phantom report writer can produce, with its un-negated RaTE type."""
    lex = {}
    for t in FINDINGS.values():
        for s in t.synonyms:
            lex[s] = t.entity_type
    for d in INFERRED_DISEASE.values():
        lex[d] = DISEASE
    for sites in FINDING_SITES.values():
        for s in sites:
            if s != "bilateral":
                lex[s] = ANATOMY
    for s in EXTRA_ANATOMY:
        lex[s] = ANATOMY
    return lex
