"""generate.py end to end on the phantom default, small."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pandas as pd
import pytest

from syncxr.dataset_dirs import build_generated_dir, generate_dataset
from syncxr.data.dataset_format import read_dataset
from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.entities.vocabulary import gini
from syncxr.generation.generation_job import generation_config
from syncxr.generation.pipeline import generation_hash
from syncxr.phantom.vocabulary import phantom_lexicon
from syncxr.reports.loop import entity_key
from tests.helpers import REPO, compose_config, compose_train

SMALL = ["n_samples=120", "shard_size=40", "corpus.n=200", "corpus.image_size=64", "imagegen.image_size=64"]


def gen_cfg(overrides):
    return generation_config(compose_config("generate", overrides))


@pytest.fixture(scope="module")
def small_dataset(cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "ds"
    return generate_dataset(gen_cfg(SMALL), out, cache_dir, progress=False)


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


def test_no_entity_exceeds_tau_max_and_stats_are_recorded(small_dataset):
    df, info = read_dataset(small_dataset)
    counts = Counter((e["name"], e["type"]) for ents in df["entities"] for e in ents)
    assert max(counts.values()) <= info["tau_max"]
    assert info["entity_stats"]["all"]["max"] == max(counts.values())
    assert 0 <= info["entity_stats"]["all"]["gini"] < 1
    assert info["counters"]["findings_rejected"] > 0  # the template LLM's omissions were caught
    assert info["counters"]["findings_calls"] == 120 + info["counters"]["findings_rejected"] - \
        info["counters"]["findings_gave_up"]
    rejects = [json.loads(l) for p in (small_dataset / "shards").glob("rejects_*.jsonl")
               for l in p.read_text().splitlines()]
    assert len(rejects) == info["counters"]["findings_rejected"] + info["counters"]["impression_rejected"]
    assert (small_dataset / "entity_distribution.png").is_file()
    assert (small_dataset / "vocab_long_tail.png").is_file()


def test_longtail_sampling_is_clearly_less_balanced(cache_dir, tmp_path):
    def plan_gini(sampling):
        gen = gen_cfg(SMALL + [f"sampling={sampling}", "n_samples=600"])
        out = generate_dataset(gen, tmp_path / sampling, cache_dir, progress=False, until="plan")
        plan = pd.read_parquet(out / "plan.parquet")
        vocab = pd.read_parquet(out / "vocab.parquet")
        c = Counter((e["name"], e["type"]) for ents in plan["entities"] for e in ents)
        return gini([c.get((n, t), 0) for n, t in zip(vocab["name"], vocab["type"])])
    g_bal, g_lt = plan_gini("balanced"), plan_gini("longtail")
    assert g_lt > g_bal + 0.2, (g_bal, g_lt)


def test_killed_generation_resumes_to_the_uninterrupted_result(cache_dir, tmp_path):
    args = SMALL + ["n_samples=160", "shard_size=20", "progress=false"]
    ref = generate_dataset(gen_cfg(args), tmp_path / "ref", cache_dir, progress=False)
    out = tmp_path / "killed"
    env = {**os.environ, "SYNCXR_CACHE": str(cache_dir), "SYNCXR_OUTPUTS": str(tmp_path)}
    cmd = [sys.executable, str(REPO / "generate.py"), *args, f"output_dir={out}"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / "shards" / "shard_00002.parquet").exists():
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
    gen = gen_cfg(SMALL + ["n_samples=40", "shard_size=40"])
    path = build_generated_dir(gen, cache_dir, "data.syn")
    assert path.name == f"syncxr-{generation_hash(gen)}"
    stamp = (path / "manifest.parquet").stat().st_mtime_ns
    assert build_generated_dir(gen, cache_dir, "data.syn") == path
    assert (path / "manifest.parquet").stat().st_mtime_ns == stamp  # found, not regenerated
    real = gen_cfg(SMALL + ["n_samples=40", "llm=llama31_8b"])
    with pytest.raises(FileNotFoundError, match=r"python generate.py llm=llama31_8b .*n_samples=40"):
        build_generated_dir(real, cache_dir, "data.syn")


@pytest.mark.parametrize("override,match", [
    ("entity_ratio=0", "entity_ratio"), ("n_samples=0", "n_samples"), ("shard_size=0", "shard_size"),
    ("val_fraction=1.0", r"val_fraction must be in \[0, 1\), got 1.0"), ("val_fraction=-0.1", "val_fraction"),
    ("max_image_attempts=0", "max_image_attempts must be >= 1"), ("max_report_attempts=0", "max_report_attempts")])
def test_bad_generation_settings_fail_with_the_key_named(cache_dir, tmp_path, override, match):
    with pytest.raises(ValueError, match=match):
        generate_dataset(gen_cfg(SMALL + [override]), tmp_path / "x", cache_dir, progress=False)


def test_train_and_generate_compute_the_same_address():
    gen = compose_config("generate", ["llm=llama31_8b", "n_samples=500", "sampling=longtail"])
    train = compose_train(["llm=llama31_8b", "generation.n_samples=500", "sampling=longtail"])
    assert generation_hash(generation_config(gen)) == generation_hash(generation_config(train.generation))
    assert generation_hash(generation_config(gen)) == generation_hash(
        generation_config(train.data.syn.generation))
