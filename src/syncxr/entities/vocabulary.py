"""The entity vocabulary of a report corpus: each entity with its type and frequency."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..backends import NER
from ..data.durable import save_figure_atomic
from ..data.inequality import gini
from ..phantom.vocabulary import ENTITY_TYPES


def build_vocabulary(texts, ner: NER, batch_size: int = 256, progress: bool = True) -> pd.DataFrame:
    """Runs `ner` over `texts`; returns columns name, type, count (documents mentioning it),
    sorted by type then count descending. Empty texts are skipped."""
    counts: Counter = Counter()
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    for i in tqdm(range(0, len(texts), batch_size), desc="entity vocabulary", disable=not progress):
        for ents in ner.extract_batch(texts[i : i + batch_size]):
            counts.update({(e["name"], e["type"]) for e in ents})
    rows = [{"name": n, "type": t, "count": c} for (n, t), c in counts.items()]
    vocab = pd.DataFrame(rows, columns=["name", "type", "count"])
    unknown = set(vocab["type"]) - set(ENTITY_TYPES)
    if unknown:
        raise ValueError(f"NER produced unknown entity type(s) {sorted(unknown)}; expected {ENTITY_TYPES}")
    return vocab.sort_values(["type", "count", "name"], ascending=[True, False, True], ignore_index=True)


def read_report_corpus(path: str | Path, text_column: str) -> list[str]:
    """Report texts from a CSV (UTF-8) or Parquet file's `text_column`. A file that cannot be read, or
    holds no report, fails naming the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"report corpus {path} not found")
    kind = "Parquet" if path.suffix == ".parquet" else "CSV"
    try:
        df = pd.read_parquet(path) if kind == "Parquet" else pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: report corpus is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8"
        ) from e
    except pd.errors.EmptyDataError as e:
        raise ValueError(f"{path}: report corpus is empty (no header, no rows)") from e
    except (pd.errors.ParserError, OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"{path}: report corpus is not a readable {kind} file: {e}") from e
    if text_column not in df.columns:
        raise ValueError(f"{path}: no column {text_column!r}; columns are {list(df.columns)}")
    texts = ["" if pd.isna(t) else str(t) for t in df[text_column]]  # an all-empty column reads as float NaN
    if not any(t.strip() for t in texts):
        raise ValueError(
            f"{path}: report corpus has no report in column {text_column!r} ({len(texts)} rows, all empty)"
        )
    return texts


def frequency_stats(counts) -> dict:
    c = np.asarray(counts, dtype=float)
    if len(c) == 0:
        return {"entities": 0, "max": 0, "min": 0, "mean": 0.0, "gini": 0.0}
    return {"entities": int(len(c)), "max": int(c.max()), "min": int(c.min()), "mean": float(c.mean()), "gini": gini(c)}


def plot_long_tail(vocabs: dict[str, pd.DataFrame], path: Path) -> None:
    """Rank-frequency plots (log-log), one panel per entity type, one line per named vocabulary.
    Entities with count 0 (in the vocabulary, never used) are drawn at 0.1 so log axes keep them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ENTITY_TYPES), figsize=(4 * len(ENTITY_TYPES), 3.4))
    for ax, etype in zip(axes, ENTITY_TYPES):
        for name, vocab in vocabs.items():
            c = np.sort(vocab.loc[vocab["type"] == etype, "count"].to_numpy())[::-1]
            if len(c):
                ax.loglog(np.arange(1, len(c) + 1), np.maximum(c, 1e-1), marker=".", markersize=3, label=name)
        ax.set_title(etype, fontsize=9)
        ax.set_xlabel("rank")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("reports mentioning the entity")
    if len(vocabs) > 1:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
