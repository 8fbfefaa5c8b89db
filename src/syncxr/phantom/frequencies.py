"""How often each finding occurs in the phantom "real" corpus, calibrated to real labelled corpora.

Calibration anchors (the only figures the world is fitted to; never the SynCXR paper's outcomes):

- NIH ChestX-ray14 (Wang et al., CVPR 2017; 112,120 frontal images, labels text-mined from the
  reports): per-label prevalence (percent of images) for its fourteen labels, and the share of images
  with 0, 1, 2, 3 and 4 or more labels: 53.8 / 27.6 / 12.8 / 4.3 / 1.5 %. Its finding-frequency Gini
  is 0.465 and its max/min prevalence ratio 88.
- The real range of finding-frequency skew: from ChestX-ray14 (Gini 0.465) to PadChest (Bustos et al.
  2020, 160,861 images, 193 labels: Gini 0.761). CheXpert (Irvin et al. 2019, 223,414 training
  images) spans Support devices 51.9 % to Pleural other 1.6 %.

The twenty phantom findings that ChestX-ray14 does not label (devices, fractures, mediastinal,
abdominal and rarer lung findings) have no per-label anchor here: their prevalences are ASSUMED,
set once in the range of ChestX-ray14's own labels (0.2-4 %), devices far below CheXpert's
inpatient 51.9 % because the anchor population (NIH) is largely outpatient. They are marked
`assumed` in ANCHOR_SOURCE and in every corpus's dataset.json.

The corpus keeps the anchors' relative frequencies (which Gini and max/min measure) and ChestX-ray14's
number-of-findings profile exactly: absolute prevalences are the anchors times one factor, so that
the expected number of findings per image is that of the profile.
"""

from __future__ import annotations

import numpy as np

from .vocabulary import FINDING_KEYS

NIH = "NIH ChestX-ray14 (Wang et al. 2017), label prevalence"
ASSUMED = "assumed (no per-label anchor)"

# Percent of images showing each finding in its anchor dataset.
ANCHOR_PREVALENCE = {
    # NIH ChestX-ray14
    "infiltration": 17.7,
    "pleural_effusion": 11.9,
    "atelectasis": 10.3,
    "nodule": 5.7,
    "mass": 5.2,
    "pneumothorax": 4.7,
    "consolidation": 4.2,
    "pleural_thickening": 3.0,
    "cardiomegaly": 2.5,
    "emphysema": 2.2,
    "edema": 2.1,
    "fibrosis": 1.5,
    "pneumonia": 1.3,
    "hernia": 0.2,
    # assumed
    "central_venous_catheter": 4.0,
    "endotracheal_tube": 2.5,
    "tortuous_aorta": 2.5,
    "nasogastric_tube": 2.0,
    "calcified_granuloma": 2.0,
    "scoliosis": 2.0,
    "sternotomy_wires": 1.8,
    "pacemaker": 1.5,
    "rib_fracture": 1.2,
    "elevated_hemidiaphragm": 1.2,
    "hilar_enlargement": 1.0,
    "chest_tube": 0.8,
    "widened_mediastinum": 0.6,
    "bulla": 0.5,
    "subcutaneous_emphysema": 0.4,
    "pleural_plaques": 0.4,
    "clavicle_fracture": 0.3,
    "cavity": 0.3,
    "pneumoperitoneum": 0.2,
    "miliary_nodules": 0.2,
}
NIH_LABELS = (
    "infiltration",
    "pleural_effusion",
    "atelectasis",
    "nodule",
    "mass",
    "pneumothorax",
    "consolidation",
    "pleural_thickening",
    "cardiomegaly",
    "emphysema",
    "edema",
    "fibrosis",
    "pneumonia",
    "hernia",
)
ANCHOR_SOURCE = {k: NIH if k in NIH_LABELS else ASSUMED for k in ANCHOR_PREVALENCE}
# P(k findings in an image), k = 0..4 (ChestX-ray14; its "four or more" taken as four).
NIH_FINDINGS_PER_IMAGE = (0.538, 0.276, 0.128, 0.043, 0.015)
# The real range of finding-frequency Gini (ChestX-ray14 .. PadChest) and ChestX-ray14's max/min.
REAL_GINI_RANGE = (0.45, 0.76)
MIN_MAX_MIN_RATIO = 50.0

assert set(ANCHOR_PREVALENCE) == set(FINDING_KEYS), "every phantom finding needs an anchor prevalence"


def real_prevalence(profile=NIH_FINDINGS_PER_IMAGE, anchors=None) -> dict[str, float]:
    """P(finding) in the phantom real corpus: the anchors scaled so that they sum to the profile's
    mean number of findings per image."""
    anchors = ANCHOR_PREVALENCE if anchors is None else anchors
    mean_k = float(np.dot(np.arange(len(profile)), profile))
    total = sum(anchors.values())
    return {k: v * mean_k / total for k, v in anchors.items()}


def tail_findings(ratio: float = 0.1) -> tuple[str, ...]:
    """The rare findings: those less than `ratio` times as frequent as the most frequent one (in
    ChestX-ray14: fibrosis, pneumonia and hernia), the tail that balanced synthetic sampling lifts
    and long-tailed sampling keeps."""
    head = max(ANCHOR_PREVALENCE.values())
    return tuple(sorted(k for k, v in ANCHOR_PREVALENCE.items() if v < ratio * head))


def calibration_record() -> dict:
    """What the corpus was calibrated to, for dataset.json."""
    return {
        "findings_per_image": {"source": "NIH ChestX-ray14 (Wang et al. 2017)", "p": list(NIH_FINDINGS_PER_IMAGE)},
        "anchor_prevalence_percent": dict(ANCHOR_PREVALENCE),
        "anchor_source": dict(ANCHOR_SOURCE),
        "target_gini_range": list(REAL_GINI_RANGE),
        "target_min_max_min_ratio": MIN_MAX_MIN_RATIO,
    }


def draw_profile_labels(
    n: int, prevalence: dict[str, float], profile, rng: np.random.Generator
) -> list[tuple[str, ...]]:
    """Finding sets for `n` images with exactly the profile's number-of-findings counts and finding
    counts proportional to `prevalence` (largest-remainder rounding): stratified, not independent,
    draws, so a small corpus carries the anchors' frequencies without sampling noise. Images with
    many findings are filled first, each drawing distinct findings in proportion to what is left."""
    ks = _apportion(np.asarray(profile, float), n)
    per_image = rng.permutation(np.repeat(np.arange(len(profile)), ks))
    keys = sorted(prevalence)
    weights = np.array([prevalence[k] for k in keys], float)
    left = _apportion(weights, int(per_image.sum())) if per_image.sum() else np.zeros(len(keys), int)
    out: list[tuple[str, ...]] = [()] * n
    for i in np.argsort(-per_image, kind="stable"):
        k = int(per_image[i])
        open_ = np.flatnonzero(left > 0)
        k = min(k, len(open_))
        if k == 0:
            continue
        chosen = rng.choice(open_, size=k, replace=False, p=left[open_] / left[open_].sum())
        left[chosen] -= 1
        out[i] = tuple(sorted(keys[j] for j in chosen))
    return out


def _apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `weights` (largest remainder)."""
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts
