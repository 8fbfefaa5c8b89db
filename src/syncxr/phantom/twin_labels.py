"""What each benchmark twin is about: which phantom findings it draws as its subject, which as its
rare (tail) classes, and how findings map onto the benchmark's published label columns.

"Rare" is the tail of the real corpus (`frequencies.tail_findings`): the class sets of the twins
(`class_sets` in conf/benchmark/*.yaml) follow from these maps, and a test keeps them in step.
"""

from __future__ import annotations

from .frequencies import tail_findings
from .vocabulary import DEVICES, FINDING_KEYS

TAIL = tail_findings()

CHEXPERT_LABELS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity",
                   "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis",
                   "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices")
# Which CheXpert columns a phantom finding turns on (findings CheXpert does not label turn on none).
CHEXPERT_COLUMNS_OF = {
    "cardiomegaly": ("Cardiomegaly", "Enlarged Cardiomediastinum"),
    "widened_mediastinum": ("Enlarged Cardiomediastinum",),
    "consolidation": ("Consolidation", "Lung Opacity"), "pneumonia": ("Pneumonia", "Lung Opacity"),
    "edema": ("Edema", "Lung Opacity"), "atelectasis": ("Atelectasis", "Lung Opacity"),
    "infiltration": ("Lung Opacity",), "fibrosis": ("Lung Opacity",),
    "pleural_effusion": ("Pleural Effusion",), "pneumothorax": ("Pneumothorax",),
    "pleural_thickening": ("Pleural Other",), "pleural_plaques": ("Pleural Other",),
    **{k: ("Lung Lesion",) for k in ("nodule", "mass", "cavity", "calcified_granuloma", "miliary_nodules")},
    "rib_fracture": ("Fracture",), "clavicle_fracture": ("Fracture",),
    **{k: ("Support Devices",) for k in DEVICES},
}
CHEXPERT5 = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")

CHESTXRAY14_LABELS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule",
                      "Pneumonia", "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis",
                      "Pleural_Thickening", "Hernia")
CHESTXRAY14_OF = {"atelectasis": ("Atelectasis",), "cardiomegaly": ("Cardiomegaly",),
                  "pleural_effusion": ("Effusion",), "infiltration": ("Infiltration",), "mass": ("Mass",),
                  "nodule": ("Nodule",), "pneumonia": ("Pneumonia",), "pneumothorax": ("Pneumothorax",),
                  "consolidation": ("Consolidation",), "edema": ("Edema",), "emphysema": ("Emphysema",),
                  "fibrosis": ("Fibrosis",), "pleural_thickening": ("Pleural_Thickening",), "hernia": ("Hernia",)}

# PadChest label columns of the twin (PadChest's own label names). The first name of each finding is
# the one its class sets use; a second name is one phantom reports never use ("unseen").
PADCHEST_OF = {
    "cardiomegaly": ("cardiomegaly",), "pleural_effusion": ("pleural effusion", "costophrenic angle blunting"),
    "atelectasis": ("atelectasis", "laminar atelectasis"), "consolidation": ("consolidation", "alveolar pattern"),
    "edema": ("pulmonary edema", "interstitial pattern"), "nodule": ("nodule",), "infiltration": ("infiltrates",),
    "mass": ("mass",), "emphysema": ("emphysema", "copd signs"),
    "tortuous_aorta": ("tortuous aorta", "aortic elongation"),
    "scoliosis": ("scoliosis",), "calcified_granuloma": ("calcified granuloma",),
    "pneumothorax": ("pneumothorax",),
    # the tail
    "pneumonia": ("pneumonia",), "fibrosis": ("pulmonary fibrosis",), "hernia": ("hiatal hernia",),
    "pacemaker": ("pacemaker",), "rib_fracture": ("callus rib fracture",),
    "elevated_hemidiaphragm": ("hemidiaphragm elevation",), "hilar_enlargement": ("hilar enlargement",),
    "chest_tube": ("chest drain tube",), "widened_mediastinum": ("mediastinal enlargement",),
    "bulla": ("bullas",), "subcutaneous_emphysema": ("subcutaneous emphysema",),
    "pleural_plaques": ("calcified pleural plaques",), "clavicle_fracture": ("clavicle fracture",),
    "cavity": ("cavitation",), "pneumoperitoneum": ("pneumoperitoneo",), "miliary_nodules": ("miliary opacities",),
}
PADCHEST_LABELS = ("normal", *sorted({c for cols in PADCHEST_OF.values() for c in cols}))

TWINS = ("chexpert", "chestxray14", "padchest", "rsna", "siim", "covidx", "covid_rural")
# Findings each twin draws at `prevalence` (its subject).
SUBJECT = {
    "chexpert": ("atelectasis", "cardiomegaly", "consolidation", "edema", "pleural_effusion"),
    "chestxray14": tuple(k for k in CHESTXRAY14_OF if k not in TAIL),
    "padchest": tuple(k for k in PADCHEST_OF if k not in TAIL),
    "rsna": ("pneumonia",),
    "siim": ("pneumothorax",),
    "covidx": ("consolidation", "edema"),  # both together: "COVID"
    "covid_rural": ("consolidation", "edema"),  # every image
}
# Tail findings drawn at `prevalence_rare`, so that the rare classes have positives to score.
RARE = {
    "chestxray14": tuple(k for k in CHESTXRAY14_OF if k in TAIL),
    "padchest": tuple(k for k in PADCHEST_OF if k in TAIL),
}
# Findings never drawn as background of a twin, because the benchmark would call them its subject
# (an opacity in RSNA is "pneumonia").
EXCLUDED = {"rsna": ("consolidation", "infiltration")}


def background_findings(name: str) -> tuple[str, ...]:
    """What twin `name` draws at the real corpus's prevalence: every other finding."""
    taken = {*SUBJECT[name], *RARE.get(name, ()), *EXCLUDED.get(name, ())}
    return tuple(k for k in FINDING_KEYS if k not in taken)


def class_sets(name: str) -> dict[str, list[str]]:
    """The class sets a twin's rare / seen / unseen zero-shot evaluation uses, from the maps above."""
    if name == "chestxray14":
        return {"common": [CHESTXRAY14_OF[k][0].lower() for k in SUBJECT[name]],
                "rare": [CHESTXRAY14_OF[k][0].lower() for k in RARE[name]]}
    if name == "padchest":
        return {"seen": [PADCHEST_OF[k][0] for k in SUBJECT[name]],
                "unseen": [PADCHEST_OF[k][1] for k in SUBJECT[name] if len(PADCHEST_OF[k]) > 1],
                "rare": [PADCHEST_OF[k][0] for k in RARE[name]]}
    return {}
