"""analyze.py: curation and long tail of the phantom real corpus, compared with others."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from syncxr.analysis.analysis_job import run_analysis
from tests.data.test_mimic_cxr import tree  # noqa: F401  (the MIMIC-shaped tree fixture)
from tests.helpers import REPO, compose_config

SMALL = [
    "phantom.n=160",
    "phantom.image_size=128",
    "corpus.seed=4",
    "corpus.low_quality_rate=0.08",
    "corpus.wrong_view_rate=0.05",
    "corpus.unpaired_rate=0.05",
]  # = the session's real_dir_128


def compose_analysis(overrides):
    return compose_config("analyze", overrides)


def test_both_analyses_with_a_dataset_beside_the_corpus(cache_dir, real_dir_128, syn_dir, tmp_path):
    cfg = compose_analysis(
        SMALL + [f"paths.cache_dir={cache_dir}", f"+compare.syn={syn_dir}", "compare_generated=false"]
    )
    summary = run_analysis(cfg, tmp_path)
    assert summary["corpus"] == str(real_dir_128)
    assert summary["curation"]["removal_vs_planted"]["recall"] >= 0.9
    assert {r["dataset"] for r in summary["long_tail"]} == {"corpus", "syn"}
    for name in ("curation.json", "contact_sheet.png", "long_tail.md", "analysis.json", "resolved_config.yaml"):
        assert (tmp_path / name).is_file(), name


def test_unknown_analysis_is_named(cache_dir, tmp_path):
    cfg = compose_analysis(SMALL + [f"paths.cache_dir={cache_dir}", "analyses=[curation,topics]"])
    with pytest.raises(ValueError, match="topics"):
        run_analysis(cfg, tmp_path)


@pytest.mark.slow  # end to end (the quick loop, pytest -m 'not slow', stays under two minutes)
def test_command_line(cache_dir, real_dir_128, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "analyze.py"),
            *SMALL,
            f"paths.cache_dir={cache_dir}",
            f"paths.output_root={tmp_path}",
            "analyses=[long_tail]",
            "compare_generated=false",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = next((tmp_path / "analysis").iterdir())
    assert json.loads((run_dir / "analysis.json").read_text())["long_tail"]


def test_both_analyses_on_a_mimic_shaped_tree(cache_dir, tree, tmp_path):
    cfg = compose_analysis(
        [
            f"paths.cache_dir={cache_dir}",
            "dataset@corpus=mimic_cxr",
            f"corpus.root={tree.root}",
            "corpus.image_size=null",
            "compare_generated=false",
            "analyses=[curation,long_tail]",
        ]
    )
    summary = run_analysis(cfg, tmp_path / "out")
    kept = len(tree.expected)  # the good pairs; the bad rows never reached the dataset
    assert summary["curation"]["rows"] == kept and "removal_vs_planted" not in summary["curation"]
    assert summary["curation"]["kept"] + summary["curation"]["judge"] + summary["curation"]["similarity"] == kept
    corpus_all = next(r for r in summary["long_tail"] if r["dataset"] == "corpus" and r["type"] == "all")
    # Against the phantom writer's own entity lists (not the NER): the entities of the kept reports'
    # source rows that their sections name. One name may be written as two types (a finding in one
    # section, its absence in the other), which the NER counts once: unique may fall short by one.
    truth = written_entities(tree)
    assert len(truth) >= 10 and len(truth) - 1 <= corpus_all["unique"] <= len(truth), (corpus_all, truth)
    found = pd.read_csv(tmp_path / "out" / "corpus_entities.csv")
    assert set(found["name"]) == {name for name, _ in truth}, sorted(found["name"])


def written_entities(tree) -> set[tuple[str, str]]:
    """(name, type) of the entities the phantom writer put into the sections of the tree's kept reports."""
    out = set()
    for findings, impression, _ in tree.expected.values():
        for column, text in (("findings", findings), ("impression", impression)):
            if text:
                (row,) = tree.phantom.index[tree.phantom[column] == text][:1]
                out |= {
                    (e["name"].lower(), e["type"])
                    for e in tree.phantom.loc[row, "entities"]
                    if re.search(rf"\b{re.escape(e['name'].lower())}\b", text.lower())
                }
    return out
