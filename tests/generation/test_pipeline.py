"""generate.py end to end on the phantom default, small."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from fractions import Fraction

import pandas as pd
import pytest

from syncxr.data.dataset_format import read_dataset
from syncxr.dataset_dirs import build_generated_dir, generate_dataset
from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.entities.vocabulary import gini
from syncxr.generation.addresses import generation_hash
from syncxr.generation.generation_job import generation_config
from syncxr.generation.pipeline import GenerationSettings, make_plan
from syncxr.images.phantom_t2i import findings_from_entities
from syncxr.phantom.corpus import PhantomCorpusSpec, corpus_reports, finding_stats
from syncxr.phantom.vocabulary import ENTITY_TYPES, phantom_lexicon
from syncxr.reports.loop import entity_key
from tests.figures import lines_by_label, recorded_figures
from tests.helpers import REPO, compose_config, compose_train

SMALL = [
    "generation.n_samples=120",
    "generation.shard_size=40",
    "corpus.n=200",
    "corpus.image_size=64",
    "imagegen.image_size=64",
]


def gen_cfg(overrides):
    return generation_config(compose_config("generate", overrides).generation)


@pytest.fixture(scope="module")
def generated(cache_dir, tmp_path_factory):
    """The SMALL dataset and the figures its generation saved."""
    out = tmp_path_factory.mktemp("gen") / "ds"
    with recorded_figures() as figures:
        path = generate_dataset(gen_cfg(SMALL), out, cache_dir, progress=False)
    return path, figures


@pytest.fixture(scope="module")
def small_dataset(generated):
    return generated[0]


def test_every_row_extracts_exactly_its_sampled_entities(small_dataset):
    df, info = read_dataset(small_dataset)
    ner = LexiconNER(phantom_lexicon())
    assert info["counts"]["rows"] == len(df) == info["counters"]["samples_written"]
    assert len(df) + info["counters"]["samples_dropped"] == 120
    for row in df.itertuples():
        assert entity_key(ner.extract(row.findings)) == entity_key(row.entities)
        assert entity_key(ner.extract(row.impression)) == entity_key(row.entities)
        assert (small_dataset / row.image).is_file()
    assert set(df["split"]) <= {"train", "val"} and df["id"].is_unique


NEGATION = ("no ", "there is no ")  # how a report states a finding as absent ("No evidence of x.")


def _mentions(text: str, name: str, others: list[str]) -> list[str]:
    """The sentences of `text` that name `name` by plain string search (whole words, any case), not
    counting where it is only part of a longer name in `others` ("effusion" in "pleural effusion")."""
    out = []
    for sentence in text.lower().split("."):
        for longer in others:
            if name in longer and name != longer:
                sentence = sentence.replace(longer, " ")
        if re.search(rf"\b{re.escape(name)}\b", sentence):
            out.append(sentence.strip())
    return out


def test_every_row_states_its_entities_checked_without_the_ner(small_dataset):
    """An independent check of what the NER filter accepted: each sampled entity is written in both
    sections, stated as absent exactly when its type is a NON- type."""
    df, _ = read_dataset(small_dataset)
    assert len(df) >= 110  # of 120: the loop below is not vacuous
    for row in df.itertuples():
        names = [e["name"] for e in row.entities]
        for section in (row.findings, row.impression):
            for e in row.entities:
                found = _mentions(section, e["name"], names)
                assert found, (e, section)
                if e["type"] != "ANATOMY":
                    negated = e["type"].startswith("NON-")
                    assert all(s.startswith(NEGATION) == negated for s in found), (e, section)


def test_no_entity_exceeds_tau_max_and_stats_are_recorded(generated):
    small_dataset, figures = generated
    df, info = read_dataset(small_dataset)
    vocab = pd.read_parquet(small_dataset / "vocab.parquet")
    n_anatomy = int((vocab["type"] == "ANATOMY").sum())
    n_findings = len(vocab) - n_anatomy
    # 120 samples, each with k=2 finding and m=2 anatomy entities; slack 1.5 (conf/sampling/balanced.yaml).
    # The phantom corpus gives 40 finding and 18 anatomy entities: 240/40 x 1.5 = 9 and 240/18 x 1.5 = 20;
    # one cap serves both, the larger.
    assert {k: info["config"]["sampling"][k] for k in ("k", "m", "tau_max", "tau_max_slack")} == {
        "k": 2,
        "m": 2,
        "tau_max": None,
        "tau_max_slack": 1.5,
    }
    tau = max(math.ceil(Fraction(240, n) * Fraction(3, 2)) for n in (n_findings, n_anatomy))
    assert info["tau_max"] == tau
    counts = Counter((e["name"], e["type"]) for ents in df["entities"] for e in ents)
    assert max(counts.values()) <= tau
    assert info["entity_stats"]["all"]["max"] == max(counts.values())
    assert 0 <= info["entity_stats"]["all"]["gini"] < 1
    assert info["counters"]["findings_rejected"] > 0  # the template LLM's omissions were caught
    assert (
        info["counters"]["findings_calls"]
        == 120 + info["counters"]["findings_rejected"] - info["counters"]["findings_gave_up"]
    )
    rejects = [
        json.loads(line)
        for p in (small_dataset / "shards").glob("rejects_*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert len(rejects) == info["counters"]["findings_rejected"] + info["counters"]["impression_rejected"]
    # The plots show, per entity type, the corpus's rank-frequency curve and the generated one.
    long_tail = figures["vocab_long_tail.png"]
    distribution = figures["entity_distribution.png"]
    for fig, curves in ((long_tail, ("corpus",)), (distribution, ("corpus", "generated"))):
        assert [ax.get_title() for ax in fig.axes] == list(ENTITY_TYPES)
        for ax, etype in zip(fig.axes, ENTITY_TYPES):
            used = {n: c for (n, t), c in counts.items() if t == etype}
            expected = {
                "corpus": sorted(vocab.loc[vocab["type"] == etype, "count"], reverse=True),
                "generated": sorted(
                    [used.get(n, 0.1) for n in vocab.loc[vocab["type"] == etype, "name"]], reverse=True
                ),
            }
            assert lines_by_label(ax) == {c: expected[c] for c in curves}, (etype, fig is distribution)


def test_plan_cap_is_the_balanced_count_times_the_slack():
    types = ["ABNORMALITY", "NON-ABNORMALITY", "DISEASE", "NON-DISEASE", "ABNORMALITY"] * 2 + ["ANATOMY"] * 4
    vocab = pd.DataFrame({"name": [f"e{i}" for i in range(len(types))], "type": types, "count": 1})

    def plan(sampling="balanced", tau_max=None):
        return make_plan(
            vocab,
            GenerationSettings(
                n_samples=30,
                seed=0,
                entity_ratio=1.0,
                sampling=sampling,
                k=2,
                m=2,
                tau_max=tau_max,
                tau_max_slack=1.5,
                shard_size=30,
                max_report_attempts=1,
                max_image_attempts=1,
                val_fraction=0.0,
            ),
        )

    # 30 samples x 2 over 10 finding entities = 6 each, x 1.5 = 9; x 2 over 4 anatomy entities = 15,
    # x 1.5 = 22.5, rounded up: 23. The cap is the larger.
    assert set(plan()["tau_max"]) == {23}
    capped = plan(tau_max=16)  # 60 anatomy draws over 4 entities under a cap of 16: it binds
    counts = Counter(e["name"] for ents in capped["entities"] for e in ents if e["type"] == "ANATOMY")
    assert set(capped["tau_max"]) == {16} and sum(counts.values()) == 60 and max(counts.values()) == 16
    assert set(plan("longtail")["tau_max"]) == {-1}


def test_longtail_sampling_follows_the_corpus_and_balanced_does_not(cache_dir, tmp_path):
    """Entity and finding frequencies of the planned samples: long-tailed sampling keeps the skew of
    the corpus, balanced sampling removes much of it (issue 14: a finding-Gini gap of at least 0.15).
    The default corpus size: a smaller one has fewer forms of the rare findings to balance over."""

    def plan_gini(sampling):
        gen = gen_cfg(SMALL + [f"sampling={sampling}", "generation.n_samples=600", "corpus.n=3000"])
        out = generate_dataset(gen, tmp_path / sampling, cache_dir, progress=False, until="plan")
        plan = pd.read_parquet(out / "plan.parquet")
        vocab = pd.read_parquet(out / "vocab.parquet")
        c = Counter((e["name"], e["type"]) for ents in plan["entities"] for e in ents)
        findings = Counter(k for ents in plan["entities"] for k in findings_from_entities(list(ents))[0])
        return (gini([c.get((n, t), 0) for n, t in zip(vocab["name"], vocab["type"])]), finding_stats(findings)["gini"])

    (e_bal, f_bal), (e_lt, f_lt) = plan_gini("balanced"), plan_gini("longtail")
    assert e_lt > e_bal + 0.2, (e_bal, e_lt)
    assert f_lt > f_bal + 0.15, (f_bal, f_lt)
    corpus = corpus_reports(
        PhantomCorpusSpec(kind="real", n=3000, image_size=64, low_quality_rate=0.02, wrong_view_rate=0.01), cache_dir
    )  # the vocabulary's
    f_corpus = finding_stats(Counter(k for ks in corpus["labels"] for k in ks))["gini"]
    assert abs(f_lt - f_corpus) < abs(f_bal - f_corpus), (f_corpus, f_lt, f_bal)


def test_studies_compare_real_and_synthetic_on_equal_numbers_of_pairs():
    """Issue 14: by default synthetic and real pre-training see as many pairs each, and mix both; the
    vocabulary is built from the very corpus data=real trains on."""
    real = compose_train(["data=real"])
    mix = compose_train(["data=mix"])
    assert real.generation.n_samples == real.data.real.n == real.corpus.n
    assert {k: v for k, v in real.corpus.items()} == {k: v for k, v in real.data.real.items() if k in real.corpus}
    assert mix.data.real is not None and mix.data.syn is not None and mix.data.get("syn_fraction") is None


@pytest.mark.slow  # end to end (the quick loop, pytest -m 'not slow', stays under two minutes)
def test_killed_generation_resumes_to_the_uninterrupted_result(cache_dir, tmp_path):
    args = SMALL + ["generation.n_samples=160", "generation.shard_size=20", "progress=false"]
    ref = generate_dataset(gen_cfg(args), tmp_path / "ref", cache_dir, progress=False)
    out = tmp_path / "killed"
    env = {**os.environ, "SYNCXR_CACHE": str(cache_dir), "SYNCXR_OUTPUTS": str(tmp_path)}
    cmd = [sys.executable, str(REPO / "generate.py"), *args, f"output_dir={out}"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / "shards" / "shard_00002.json").exists():
        time.sleep(0.01)
    assert proc.poll() is None, "generation finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.parquet").exists()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    a, info_a = read_dataset(ref)
    b, info_b = read_dataset(out)
    pd.testing.assert_frame_equal(a, b)
    assert info_a["counters"] == info_b["counters"]
    for rel in a["image"].head(10):
        assert (ref / rel).read_bytes() == (out / rel).read_bytes()


def test_train_finds_the_dataset_by_its_generation_hash(cache_dir):
    gen = gen_cfg(SMALL + ["generation.n_samples=40", "generation.shard_size=40"])
    path = build_generated_dir(gen, cache_dir, "data.syn")
    assert path.name == f"syncxr-{generation_hash(gen)}"
    stamp = (path / "manifest.parquet").stat().st_mtime_ns
    assert build_generated_dir(gen, cache_dir, "data.syn") == path
    assert (path / "manifest.parquet").stat().st_mtime_ns == stamp  # found, not regenerated
    real = gen_cfg(SMALL + ["generation.n_samples=40", "llm=llama31_8b"])
    with pytest.raises(FileNotFoundError, match=r"python generate.py llm=llama31_8b .*n_samples=40"):
        build_generated_dir(real, cache_dir, "data.syn")


@pytest.mark.parametrize(
    "override,match",
    [
        ("generation.entity_ratio=0", "entity_ratio"),
        ("generation.n_samples=0", "n_samples"),
        ("generation.shard_size=0", "shard_size"),
        ("generation.val_fraction=1.0", r"val_fraction must be in \[0, 1\), got 1.0"),
        ("generation.val_fraction=-0.1", "val_fraction"),
        ("generation.max_image_attempts=0", "max_image_attempts must be >= 1"),
        ("generation.max_report_attempts=0", "max_report_attempts"),
    ],
)
def test_bad_generation_settings_fail_with_the_key_named(cache_dir, tmp_path, override, match):
    with pytest.raises(ValueError, match=match):
        generate_dataset(gen_cfg(SMALL + [override]), tmp_path / "x", cache_dir, progress=False)


def test_train_and_generate_compute_the_same_address():
    gen = compose_config("generate", ["llm=llama31_8b", "generation.n_samples=500", "sampling=longtail"])
    train = compose_train(["llm=llama31_8b", "generation.n_samples=500", "sampling=longtail"])
    assert generation_hash(generation_config(gen.generation)) == generation_hash(generation_config(train.generation))
    assert generation_hash(generation_config(gen.generation)) == generation_hash(
        generation_config(train.data.syn.generation)
    )


def test_attempts_record_the_report_llms_quality(small_dataset):
    """dataset.json's `attempts` figures agree with the rejected answers the shards kept: a section's
    first answer failed iff a reject of attempt 0 names it; unasked = extracted minus expected."""
    info = json.loads((small_dataset / "dataset.json").read_text())
    attempts, c = info["attempts"], info["counters"]
    rejects = [
        json.loads(line)
        for p in (small_dataset / "shards").glob("rejects_*.jsonl")
        for line in p.read_text().splitlines()
    ]
    first_answers = 120 + (120 - c["findings_gave_up"])  # every FINDINGS; the IMPRESSION of each accepted one
    first_failed = sum(r["attempt"] == 0 for r in rejects)
    assert 0 < first_failed < first_answers  # the template LLM's omissions: some first answers fail
    assert attempts["first_attempt_exact_rate"] == pytest.approx(1 - first_failed / first_answers)
    unasked = sum(len(entity_key(r["extracted"]) - entity_key(r["expected"])) for r in rejects)
    assert attempts["unasked_entities"] == unasked == 0  # the template LLM only leaves entities out
    assert attempts["unasked_per_rejected_answer"] == 0.0
    assert attempts["dropped_samples"] == info["counts"]["dropped"]
