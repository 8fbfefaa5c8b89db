"""Figure 4 of the SynCXR paper (Appendix B): the distribution of real and synthetic data along the
first principal component of image features (RAD-DINO in the paper) and of report features (Med-CPT).

For each modality one PCA (scikit-learn) is fitted on the real and the synthetic features together,
both are projected on its first component, and the two distributions are drawn side by side:
`figure4.png` (a: images, b: reports) and `figure4.json` (per modality and dataset: rows, mean,
standard deviation, 5th-95th percentile range and inter-quartile range of PC1, the explained
variance, and whether the synthetic data spreads wider, as the paper reads its figure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from tqdm import tqdm

from ..backends import ImageEmbedder
from ..data.dataset_format import read_dataset
from ..data.durable import save_figure_atomic, write_text_atomic
from ..data.image_io import load_image
from ..entities.long_tail import report_texts

SIDES = ("real", "synthetic")


@dataclass(frozen=True)
class Figure4Settings:
    max_rows: int | None  # rows drawn (at random, seeded) from each dataset; None: all of them
    seed: int  # the draw and the PCA's solver
    bins: int  # histogram bins of the figure
    batch_size: int  # images loaded and embedded at a time


def sample_rows(directory: Path, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The manifest rows of a dataset directory, or `max_rows` of them drawn with `seed`."""
    df, _ = read_dataset(directory)
    if max_rows is not None and len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=seed).sort_index()
    return df.reset_index(drop=True)


def image_features(
    directory: Path, rows: pd.DataFrame, embedder: ImageEmbedder, batch_size: int, progress: bool
) -> np.ndarray:
    """The embedder's features of each row's image (an unreadable image fails, naming it and its row)."""
    out = []
    for i in tqdm(range(0, len(rows), batch_size), desc=f"figure 4: images of {directory.name}", disable=not progress):
        images = []
        for j, rel in enumerate(rows["image"].iloc[i : i + batch_size], start=i):
            try:
                images.append(load_image(directory / str(rel))[0].numpy())
            except (FileNotFoundError, ValueError, OSError) as e:
                raise ValueError(f"{directory}: row {j} (image {rel}): {e}") from e
        out.append(np.asarray(embedder.embed(images), dtype=np.float64))
    return np.concatenate(out)


def first_component(real: np.ndarray, synthetic: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """PC1 of the real and the synthetic features under one PCA fitted on both together, and the share
    of variance it explains. Its sign is fixed so that the real data's mean is not above zero."""
    if len(real) < 1 or len(synthetic) < 1 or len(real) + len(synthetic) < 2:
        raise ValueError(f"figure 4: PCA needs real and synthetic rows, got {len(real)} and {len(synthetic)}")
    pca = PCA(n_components=1, random_state=seed).fit(np.concatenate([real, synthetic]))
    r, s = pca.transform(real)[:, 0], pca.transform(synthetic)[:, 0]
    sign = -1.0 if r.mean() > 0 else 1.0
    return sign * r, sign * s, float(pca.explained_variance_ratio_[0])


def spread(values: np.ndarray) -> dict:
    """How one dataset spreads along PC1."""
    p5, p25, p75, p95 = np.percentile(values, [5, 25, 75, 95])
    return {
        "rows": int(len(values)),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "p5_p95_range": float(p95 - p5),
        "iqr": float(p75 - p25),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def modality_summary(real: np.ndarray, synthetic: np.ndarray, seed: int) -> tuple[dict, dict]:
    """(numbers for the json, PC1 values for the figure) of one modality's features."""
    r, s, explained = first_component(real, synthetic, seed)
    stats = {"real": spread(r), "synthetic": spread(s)}
    summary = {
        "pca_fitted_on": {"real": int(len(r)), "synthetic": int(len(s))},
        "feature_dim": int(real.shape[1]),
        "pc1_explained_variance_ratio": explained,
        **stats,
        "std_ratio_synthetic_to_real": stats["synthetic"]["std"] / max(stats["real"]["std"], 1e-12),
        "synthetic_wider": stats["synthetic"]["p5_p95_range"] > stats["real"]["p5_p95_range"],
    }
    return summary, {"real": r, "synthetic": s}


def plot_figure4(values: dict[str, dict[str, np.ndarray]], titles: dict[str, str], bins: int, path: Path) -> None:
    """One panel per modality: the PC1 histograms (density) of the real and the synthetic data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(values), figsize=(5 * len(values), 3.6))
    for ax, (letter, (modality, pcs)) in zip(np.atleast_1d(axes), zip("ab", values.items())):
        edges = np.histogram_bin_edges(np.concatenate(list(pcs.values())), bins=bins)
        for side, colour in zip(SIDES, ("tab:blue", "tab:orange")):
            ax.hist(pcs[side], bins=edges, density=True, alpha=0.5, color=colour, label=side)
        ax.set_title(f"({letter}) {titles[modality]}", fontsize=9)
        ax.set_xlabel("first principal component")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)


def figure4(
    dirs: dict[str, Path],
    embedders: dict,
    names: dict[str, str],
    settings: Figure4Settings,
    out_dir: Path,
    progress: bool,
) -> dict:
    """Figure 4 of the `real` and `synthetic` dataset directories in `dirs`, with `embedders` {"images":
    an image embedder, "reports": a report embedder} (`names`: their presets' names, for the figure and
    the json); writes figure4.png and figure4.json in `out_dir`."""
    rows = {side: sample_rows(dirs[side], settings.max_rows, settings.seed) for side in SIDES}
    feats = {
        side: image_features(dirs[side], rows[side], embedders["images"], settings.batch_size, progress)
        for side in SIDES
    }
    texts = {side: report_texts(rows[side]) for side in SIDES}
    both = np.asarray(embedders["reports"].embed(texts["real"] + texts["synthetic"]), dtype=np.float64)
    n_real = len(texts["real"])
    summary, values = {}, {}
    for modality, (real, syn) in {
        "images": (feats["real"], feats["synthetic"]),
        "reports": (both[:n_real], both[n_real:]),
    }.items():
        summary[modality], values[modality] = modality_summary(real, syn, settings.seed)
        summary[modality]["embedder"] = names[modality]
    summary["datasets"] = {side: str(dirs[side]) for side in SIDES}
    titles = {m: f"{m[:-1]} features ({summary[m]['embedder']})" for m in values}
    plot_figure4(values, titles, settings.bins, out_dir / "figure4.png")
    write_text_atomic(out_dir / "figure4.json", json.dumps(summary, indent=2))
    return summary
