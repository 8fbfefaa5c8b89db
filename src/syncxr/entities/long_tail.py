"""Long-tail analysis of report corpora: per-type entity frequency tables, rank-frequency plots
(log-log) and summary statistics (unique entities, Gini, head share, singletons), for a real corpus
and any datasets put beside it (e.g. a generated SynCXR set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..backends import NER
from ..data.durable import atomic_path, write_text_atomic
from ..phantom.vocabulary import ENTITY_TYPES
from .vocabulary import build_vocabulary, gini, plot_long_tail


def report_texts(df: pd.DataFrame) -> list[str]:
    """FINDINGS + IMPRESSION of each manifest row (either may be empty)."""
    return (df["findings"].fillna("").astype(str) + " " + df["impression"].fillna("").astype(str)).str.strip().tolist()


def type_statistics(counts: np.ndarray) -> dict:
    """Statistics of one entity type's document frequencies."""
    c = np.sort(np.asarray(counts, dtype=float))[::-1]
    if len(c) == 0:
        return {
            "unique": 0,
            "mentions": 0,
            "max": 0,
            "median": 0.0,
            "singletons": 0,
            "gini": 0.0,
            "top10pct_share": 0.0,
        }
    head = max(1, int(np.ceil(0.1 * len(c))))
    return {
        "unique": int(len(c)),
        "mentions": int(c.sum()),
        "max": int(c[0]),
        "median": float(np.median(c)),
        "singletons": int((c == 1).sum()),
        "gini": gini(c),
        "top10pct_share": float(c[:head].sum() / c.sum()),
    }


def long_tail_table(vocabs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (dataset, entity type, plus `all`) with the statistics of `type_statistics`."""
    rows = []
    for name, vocab in vocabs.items():
        for etype in (*ENTITY_TYPES, "all"):
            counts = vocab["count"] if etype == "all" else vocab.loc[vocab["type"] == etype, "count"]
            rows.append({"dataset": name, "type": etype, **type_statistics(counts.to_numpy())})
    return pd.DataFrame(rows)


def analyse_long_tail(
    texts: dict[str, list[str]], ner: NER, out_dir: Path, top: int = 15, progress: bool = True
) -> pd.DataFrame:
    """Runs `ner` over each dataset's reports; writes `<name>_entities.csv` (frequency table),
    `long_tail.csv`, `long_tail.png` and `long_tail.md` into `out_dir`; returns the statistics."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocabs = {}
    for name, t in texts.items():
        vocabs[name] = build_vocabulary(t, ner, progress=progress)
        with atomic_path(out_dir / f"{name}_entities.csv") as tmp:
            vocabs[name].to_csv(tmp, index=False)
    stats = long_tail_table(vocabs)
    with atomic_path(out_dir / "long_tail.csv") as tmp:
        stats.to_csv(tmp, index=False)
    plot_long_tail(vocabs, out_dir / "long_tail.png")
    lines = [
        "# Entity long tail",
        "",
        f"Reports: {', '.join(f'{n} {len(t)}' for n, t in texts.items())}.",
        "Counts are reports mentioning an entity (each entity once per report).",
        "",
        stats.to_markdown(index=False, floatfmt=".3f"),
        "",
        "![rank-frequency](long_tail.png)",
        "",
    ]
    for name, vocab in vocabs.items():
        lines += [f"## {name}: most frequent entities per type", ""]
        for etype in ENTITY_TYPES:
            head = vocab[vocab["type"] == etype].head(top)
            lines.append(f"- **{etype}**: " + ", ".join(f"{n} ({c})" for n, c in zip(head["name"], head["count"])))
        lines.append("")
    write_text_atomic(out_dir / "long_tail.md", "\n".join(lines))
    return stats
