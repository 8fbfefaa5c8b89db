"""Entity vocabulary of the phantom world: findings, their surface forms, sites and RaTE types.

Every finding has synonyms and modifiers (severity words indexed by the scene's severity, and
descriptors); each modifier joined to each synonym ("small pleural effusion") is an entity of its
own, as RaTE-NER spans are in real reports. That, the sites and the anatomy the writer mentions give
the world an entity vocabulary of several hundred names, so that a corpus can have a long tail.
Every surface form names exactly one finding, so text maps back to ground truth without ambiguity.
"""

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
SEVERITIES = ("small", "moderate", "large")  # a scene's severity levels (index 0, 1, 2)

LOBES = ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe")
ZONES = (
    "right upper zone",
    "right mid zone",
    "right lower zone",
    "left upper zone",
    "left mid zone",
    "left lower zone",
)
APICES = ("right apex", "left apex")
BASES = ("right lung base", "left lung base")
RIBS = tuple(f"{side} {n}th rib" for side in ("right", "left") for n in range(4, 10))
SIDES = ("right", "left")
# Change since a prior study, as real reports word it ("new small pleural effusion" is one span).
TEMPORAL = ("new", "persistent", "unchanged", "improving", "worsening")


@dataclass(frozen=True)
class FindingTerm:
    """A finding the renderer can draw and the report writer can name."""

    key: str  # identifier used in labels and masks
    canonical: str  # the name used in zero-shot prompts
    entity_type: str  # ABNORMALITY or DISEASE when present
    synonyms: tuple[str, ...]  # surface forms, the canonical one first
    sites: tuple[str, ...]  # where it can be drawn (anatomy names, verbatim in reports)
    severity_words: tuple[str, str, str] | None = None  # how each severity level is worded
    descriptors: tuple[str, ...] = ()  # modifiers that do not change what is drawn
    prep: str = "in"  # "{phrase} {prep} the {site}"
    disease: str | None = None  # a disease an impression may infer from it
    negation_weight: float = 0.1  # how often reports state its absence (times the negation rate)

    @property
    def modifiers(self) -> tuple[str, ...]:
        return (*(self.severity_words or ()), *self.descriptors)

    @property
    def temporal(self) -> tuple[str, ...]:
        """Words about change since a prior study; devices are only ever placed, not 'worsening'."""
        return () if self.key in DEVICES else TEMPORAL


def _f(key, etype, synonyms, sites, sev=None, desc=(), neg=0.1, **term):
    """A FindingTerm named by its first synonym; `term`: its other fields by name (prep, disease)."""
    return FindingTerm(
        key,
        synonyms[0],
        etype,
        tuple(synonyms),
        tuple(sites),
        tuple(sev) if sev else None,
        tuple(desc),
        negation_weight=neg,
        **term,
    )


DEVICES = (
    "endotracheal_tube",
    "central_venous_catheter",
    "nasogastric_tube",
    "pacemaker",
    "sternotomy_wires",
    "chest_tube",
)
A, D = ABNORMALITY, DISEASE
MILD = ("mild", "moderate", "severe")
SIZE = ("small", "moderate", "large")
# A table, one finding a row as the report writer reads it: kept as written.
# fmt: off
FINDINGS: dict[str, FindingTerm] = {t.key: t for t in (
    # -- the fourteen labels of NIH ChestX-ray14
    _f("infiltration", A, ("infiltration", "infiltrate", "ill-defined opacity"), ZONES,
       ("mild", "moderate", "extensive"), ("patchy", "hazy", "streaky"), neg=0.1),
    _f("pleural_effusion", A, ("pleural effusion", "effusion", "pleural fluid"),
       ("right costophrenic angle", "left costophrenic angle", "bilateral"), SIZE, ("layering", "loculated"),
       prep="at", neg=1.0),
    _f("atelectasis", A, ("atelectasis", "volume loss", "atelectatic change"),
       ("right lower lobe", "left lower lobe", *BASES, "lingula", "right middle lobe"),
       ("minimal", "mild", "moderate"), ("plate-like", "subsegmental", "linear"), neg=0.2),
    _f("nodule", A, ("nodule", "pulmonary nodule", "nodular opacity"), LOBES,
       ("tiny", "small", "15 mm"), ("solitary", "noncalcified", "well-circumscribed"), neg=0.15),
    _f("mass", A, ("mass", "lung mass", "pulmonary mass"), LOBES, ("3 cm", "5 cm", "large"),
       ("lobulated", "spiculated"), disease="malignancy", neg=0.05),
    _f("pneumothorax", D, ("pneumothorax", "pleural air", "collapsed lung"), APICES, SIZE,
       ("apical",), prep="at", neg=1.0),
    _f("consolidation", A, ("consolidation", "airspace consolidation", "airspace opacity"), LOBES,
       ("small", "moderate", "extensive"), ("dense", "focal"), disease="infection", neg=1.0),
    _f("pleural_thickening", A, ("pleural thickening", "pleural scarring", "apical cap"), APICES,
       ("minimal", "mild", "marked"), ("smooth",), prep="at"),
    _f("cardiomegaly", D, ("cardiomegaly", "cardiac enlargement", "enlarged heart"), ("cardiac silhouette",),
       MILD, prep="of", disease="cardiomyopathy", neg=0.3),
    _f("emphysema", D, ("emphysema", "hyperinflation", "emphysematous change"), ("both lungs",), MILD,
       ("centrilobular", "panlobular"), disease="chronic obstructive pulmonary disease", neg=0.05),
    _f("edema", D, ("pulmonary edema", "interstitial edema", "edema"), ("hila",), MILD,
       ("perihilar", "alveolar"), prep="around", disease="heart failure", neg=0.8),
    _f("fibrosis", D, ("fibrosis", "pulmonary fibrosis", "fibrotic change"),
       ("lung bases", *BASES), ("mild", "moderate", "advanced"), ("reticular", "interstitial"),
       disease="interstitial lung disease", neg=0.05),
    _f("pneumonia", D, ("pneumonia", "pneumonic consolidation", "bronchopneumonia"), LOBES,
       ("early", "moderate", "extensive"), ("lobar", "focal"), neg=0.4),
    _f("hernia", D, ("hiatal hernia", "hiatus hernia", "hernia"), ("retrocardiac region",), SIZE,
       ("sliding",), neg=0.02),
    # -- beyond ChestX-ray14: devices, bones, mediastinum, abdomen and rarer lung findings
    _f("endotracheal_tube", A, ("endotracheal tube", "et tube", "tracheal tube"), ("trachea",), neg=0.0),
    _f("central_venous_catheter", A, ("central venous catheter", "central line", "venous catheter"),
       ("right subclavian vein", "left subclavian vein"), prep="via", neg=0.0),
    _f("nasogastric_tube", A, ("nasogastric tube", "ng tube", "enteric tube"), ("stomach",), neg=0.0),
    _f("pacemaker", A, ("pacemaker", "cardiac pacemaker", "pacing device"),
       ("left chest wall", "right chest wall"), ("single-lead", "dual-lead", "biventricular"), prep="over",
       neg=0.0),
    _f("sternotomy_wires", A, ("sternotomy wires", "sternal wires", "median sternotomy wires"), ("sternum",),
       desc=("intact",), prep="along", neg=0.0),
    _f("chest_tube", A, ("chest tube", "pleural drain", "thoracostomy tube"),
       ("right hemithorax", "left hemithorax"), neg=0.0),
    _f("rib_fracture", D, ("rib fracture", "fractured rib", "rib break"), RIBS,
       ("nondisplaced", "mildly displaced", "displaced"), ("acute", "healing"), prep="of", neg=0.3),
    _f("clavicle_fracture", D, ("clavicle fracture", "clavicular fracture", "fractured clavicle"),
       ("right clavicle", "left clavicle"), ("nondisplaced", "mildly displaced", "displaced"), ("acute",),
       prep="of", neg=0.05),
    _f("calcified_granuloma", A, ("calcified granuloma", "granuloma", "calcified nodule"), LOBES,
       desc=("punctate", "stable"), neg=0.0),
    _f("cavity", A, ("cavitary lesion", "cavity", "cavitation"), ("right upper lobe", "left upper lobe"),
       SIZE, ("thick-walled", "irregular"), disease="tuberculosis", neg=0.02),
    _f("hilar_enlargement", A, ("hilar enlargement", "hilar prominence", "hilar lymphadenopathy"),
       ("right hilum", "left hilum", "bilateral hila"), ("mild", "moderate", "marked"), ("lobulated",),
       prep="at", disease="sarcoidosis", neg=0.05),
    _f("widened_mediastinum", A, ("widened mediastinum", "mediastinal widening", "mediastinal enlargement"),
       ("superior mediastinum",), ("mild", "moderate", "marked"), prep="of", neg=0.05),
    _f("tortuous_aorta", A, ("tortuous aorta", "aortic tortuosity", "unfolded aorta"), ("aortic knob",),
       ("mild", "moderate", "marked"), ("calcified",), prep="at", neg=0.0),
    _f("pneumoperitoneum", D, ("pneumoperitoneum", "free intraperitoneal air", "subdiaphragmatic free air"),
       ("right hemidiaphragm", "left hemidiaphragm"), SIZE, prep="beneath", disease="bowel perforation",
       neg=0.1),
    _f("elevated_hemidiaphragm", A, ("diaphragmatic elevation", "hemidiaphragm elevation",
                                     "raised hemidiaphragm"), ("right hemidiaphragm", "left hemidiaphragm"),
       ("mild", "moderate", "marked"), prep="of", neg=0.0),
    _f("scoliosis", D, ("scoliosis", "scoliotic curvature", "spinal curvature"), ("thoracic spine",), MILD,
       prep="of", neg=0.0),
    _f("subcutaneous_emphysema", A, ("subcutaneous emphysema", "subcutaneous air", "soft tissue emphysema"),
       ("right chest wall", "left chest wall"), ("trace", "moderate", "extensive"), prep="along", neg=0.05),
    _f("bulla", A, ("bulla", "bullous change", "emphysematous bulla"), APICES, SIZE, ("thin-walled",),
       prep="at", neg=0.0),
    _f("miliary_nodules", A, ("miliary nodules", "miliary pattern", "micronodular pattern"), ("both lungs",),
       desc=("innumerable", "diffuse"), prep="throughout", disease="miliary tuberculosis", neg=0.0),
    _f("pleural_plaques", A, ("pleural plaques", "calcified pleural plaques", "pleural calcification"),
       ("right hemidiaphragm", "left hemidiaphragm"), desc=("discrete", "diaphragmatic"), prep="along", neg=0.0),
)}
# fmt: on

FINDING_KEYS = tuple(FINDINGS)

# Anatomy named in reports besides the finding sites (normal statements, device tips, ...).
EXTRA_ANATOMY = (
    "cardiac silhouette",
    "cardiomediastinal silhouette",
    "pleural line",
    "costophrenic angles",
    "lungs",
    "hila",
    "superior vena cava",
    "osseous structures",
    "trachea",
    "hemidiaphragms",
    "mediastinum",
    "pleural spaces",
    "heart",
    "right atrium",
    "visualized upper abdomen",
)
SITE_WORDS = {"bilateral": "costophrenic angles"}  # sites worded otherwise in reports


def site_word(site: str) -> str:
    return SITE_WORDS.get(site, site)


def surface_forms(t: FindingTerm) -> dict[str, int | None]:
    """Every surface form of finding `t` -> the severity level it states (None: none)."""
    out: dict[str, int | None] = {s: None for s in t.synonyms}
    for m in (*t.descriptors, *t.temporal):
        out.update({f"{m} {s}": None for s in t.synonyms})
    for level, m in enumerate(t.severity_words or ()):
        out.update({f"{m} {s}": level for s in t.synonyms})
    return out


def term_index() -> dict[str, tuple[str, int | None]]:
    """Surface form (or inferred disease) -> (finding key, severity level or None)."""
    index: dict[str, tuple[str, int | None]] = {}
    for t in FINDINGS.values():
        for s, level in surface_forms(t).items():
            if s in index:
                raise ValueError(f"surface form {s!r} names both {index[s][0]} and {t.key}")
            index[s] = (t.key, level)
        if t.disease:
            index[t.disease] = (t.key, None)
    return index


def anatomy_names() -> tuple[str, ...]:
    names = {site_word(s) for t in FINDINGS.values() for s in t.sites} | set(EXTRA_ANATOMY)
    return tuple(sorted(names))


def phantom_lexicon() -> dict[str, str]:
    """Every surface form the phantom report writer can produce, with its un-negated RaTE type."""
    lex = {name: FINDINGS[key].entity_type for name, (key, _) in term_index().items()}
    lex.update({t.disease: DISEASE for t in FINDINGS.values() if t.disease})
    lex.update(dict.fromkeys(anatomy_names(), ANATOMY))
    return lex
