"""Long-tail statistics of report corpora: the phantom real corpus carries the planted long tail."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from syncxr.data.dataset_format import read_dataset
from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.entities.long_tail import analyse_long_tail, report_texts, type_statistics
from syncxr.phantom.vocabulary import phantom_lexicon


def test_type_statistics_of_known_counts():
    s = type_statistics([1, 4, 1, 2])
    assert (s["unique"], s["mentions"], s["max"], s["singletons"]) == (4, 8, 4, 2)
    assert s["top10pct_share"] == pytest.approx(4 / 8) and s["median"] == 1.5
    assert type_statistics([])["unique"] == 0


def test_real_corpus_is_long_tailed_and_syn_is_balanced(real_dir, syn_dir, tmp_path):
    real, _ = read_dataset(real_dir)
    syn, _ = read_dataset(syn_dir)
    texts = {"real": report_texts(real), "syn": report_texts(syn)}
    stats = analyse_long_tail(texts, LexiconNER(phantom_lexicon()), tmp_path, progress=False)
    gini = stats.set_index(["dataset", "type"])["gini"]
    assert gini["real", "ABNORMALITY"] > gini["syn", "ABNORMALITY"] + 0.1
    for name in ("long_tail.csv", "long_tail.md", "long_tail.png", "real_entities.csv", "syn_entities.csv"):
        assert (tmp_path / name).is_file(), name
    # Frequencies are reports mentioning the entity: they match the writer's own entity lists.
    table = pd.read_csv(tmp_path / "real_entities.csv")
    truth = Counter(
        (e["name"], e["type"]) for ents in real["entities"] for e in {(x["name"], x["type"]): x for x in ents}.values()
    )
    got = {(n, t): c for n, t, c in zip(table["name"], table["type"], table["count"])}
    assert got == dict(truth)
    unique = stats[(stats["dataset"] == "real") & (stats["type"] == "all")]["unique"].item()
    assert unique == len(truth)
