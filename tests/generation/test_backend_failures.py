"""A backend outage never shrinks a dataset: samples a backend failed on are kept as retryable, the
run ends incomplete (non-zero for generate.py, with the count and the command), and a re-run makes
exactly those, giving what an uninterrupted run gives."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from syncxr.data.dataset_format import is_complete, read_dataset
from syncxr.dataset_dirs import generate_dataset
from syncxr.generation.partial_dataset import build_partial_dataset
from syncxr.generation.shard_store import IncompleteGeneration, ShardStore
from syncxr.images.judge import HeuristicJudge
from syncxr.images.phantom_t2i import PhantomT2I
from syncxr.reports.backend_failure import BackendFailure
from syncxr.reports.template_llm import TemplateLLM
from tests.generation.template_server import TemplateChatServer
from tests.generation.test_partial_dataset import NER, ScriptedDescriber, _tiny_real, partial_settings
from tests.generation.test_pipeline import SMALL, gen_cfg
from tests.helpers import run_cli

ARGS = SMALL + ["generation.n_samples=40", "generation.shard_size=20"]
# Ids a backend of this module fails on while DOWN holds them; requests it receives, by sample id.
DOWN: set[str] = set()
SEEN: list[str] = []


class OutageLLM(TemplateLLM):
    """The template LLM behind a server that is down for the samples in DOWN."""

    def generate(self, requests):
        SEEN.extend(r.sample_id for r in requests)
        return [
            BackendFailure("connection_errors") if r.sample_id in DOWN else t
            for r, t in zip(requests, super().generate(requests))
        ]


class OutageT2I(PhantomT2I):
    """Fails (as a remote T2I server would) on the prompts of attempt seeds listed in DOWN."""

    def generate(self, prompts, seeds):
        images = super().generate(prompts, seeds)
        return [BackendFailure("timeouts") if str(s) in DOWN else im for s, im in zip(seeds, images)]


class MuteLLM(TemplateLLM):
    """Answers nothing usable: every attempt fails for its content."""

    def generate(self, requests):
        return [""] * len(requests)


class OutageJudge(HeuristicJudge):
    """The heuristic judge behind an MLLM server that is down while DOWN holds "judge"."""

    def judge(self, images):
        return [BackendFailure("http_503") if "judge" in DOWN else a for a in super().judge(images)]


def _same_dataset(a, b) -> None:
    da, ia = read_dataset(a)
    db, ib = read_dataset(b)
    pd.testing.assert_frame_equal(da, db)
    assert ia["counters"] == ib["counters"] and ia["counts"]["rows"] == ib["counts"]["rows"]
    for rel in da["image"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


@pytest.fixture(scope="module")
def reference(cache_dir, tmp_path_factory):
    return generate_dataset(gen_cfg(ARGS), tmp_path_factory.mktemp("ref") / "ds", cache_dir, progress=False)


@pytest.mark.slow  # end to end (the quick loop, pytest -m 'not slow', stays under two minutes)
def test_an_unreachable_llm_server_keeps_every_sample_for_the_next_run(cache_dir, tmp_path):
    # The audit's case: the server down for a whole run wrote empty shards a re-run never retried,
    # then failed with KeyError: 'entities'.
    server = TemplateChatServer()
    port = server.port
    server.close()  # nothing listens there now
    down = gen_cfg(
        ARGS + ["llm=llama31_8b", f"llm.base_url=http://127.0.0.1:{port}/v1", "llm.max_retries=1", "llm.backoff_s=0.01"]
    )
    out = tmp_path / "ds"
    with pytest.raises(
        IncompleteGeneration,
        match=r"40 of 40 samples were not made because a backend failed "
        r"\(llm:connection_errors: 40\)",
    ):
        generate_dataset(down, out, cache_dir, progress=False)
    assert not is_complete(out)
    assert [len(ShardStore(out / "shards").record(k)["retryable"]) for k in (0, 1)] == [20, 20]

    server = TemplateChatServer()  # back, at another address: the URL is not part of the dataset's identity
    try:
        up = gen_cfg(ARGS + ["llm=llama31_8b", f"llm.base_url={server.url}", "llm.max_retries=1"])
        done = generate_dataset(up, out, cache_dir, progress=False)
        ref = generate_dataset(up, tmp_path / "ref", cache_dir, progress=False)
    finally:
        server.close()
    _same_dataset(done, ref)
    df, info = read_dataset(done)
    assert info["counts"]["retried"] == 40 and info["counts"]["rows"] + info["counts"]["dropped"] == 40
    assert len(df) > 30 and info["backend"]["llm_connection_errors"] == 80  # 40 samples x 2 tries


def test_a_partial_outage_retries_exactly_the_samples_it_hit(cache_dir, tmp_path, reference):
    gen = gen_cfg(ARGS)
    gen["llm"]["_target_"] = f"{__name__}.OutageLLM"  # not part of the address: the same dataset
    hit = {"syn-0-0000003", "syn-0-0000017", "syn-0-0000025"}
    DOWN.clear()
    DOWN.update(hit)
    try:
        with pytest.raises(IncompleteGeneration, match="3 of 40 samples were not made"):
            generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
        DOWN.clear()
        SEEN.clear()
        out = generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
    finally:
        DOWN.clear()
    assert set(SEEN) == hit  # the re-run asked for nothing else
    _same_dataset(out, reference)
    info = json.loads((out / "dataset.json").read_text())
    assert info["counts"]["retried"] == 3 and info["counts"]["dropped"] == info["counters"]["samples_dropped"]


@pytest.mark.parametrize("stage", ["imagegen", "judge"])
def test_image_and_curation_backend_failures_are_retried_too(cache_dir, tmp_path, reference, stage):
    gen = gen_cfg(ARGS)
    rows = read_dataset(reference)[0]
    if stage == "imagegen":
        gen["imagegen"]["_target_"] = f"{__name__}.OutageT2I"
        hit = [int(rows["id"].iloc[i].rsplit("-", 1)[1]) for i in (2, 30)]
        down = {str(0 * 10_000_019 + i * 101) for i in hit}  # the first image attempt of two samples
    else:
        gen["curation"]["judge"]["_target_"] = f"{__name__}.OutageJudge"
        down = {"judge"}
    DOWN.clear()
    DOWN.update(down)
    try:
        with pytest.raises(IncompleteGeneration) as err:
            generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
        DOWN.clear()
        out = generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
    finally:
        DOWN.clear()
    # Every sample that reached the image stage, where the judge was down; the two hit samples where
    # the T2I server was.
    made_reports = len(rows) + read_dataset(reference)[1]["counters"]["images_gave_up"]
    assert err.value.retryable == (2 if stage == "imagegen" else made_reports)
    _same_dataset(out, reference)


class DownDescriber(ScriptedDescriber):
    """Its server is down for the real rows in `down` (seeds encode the row)."""

    def __init__(self, down=()):
        super().__init__({})
        self.down = set(down)

    def describe(self, images, seeds):
        out = super().describe(images, seeds)
        return [BackendFailure("timeouts") if s // 101 in self.down else a for s, a in zip(seeds, out)]


def test_a_partial_dataset_keeps_the_rows_its_backend_failed_on(tmp_path):
    real = _tiny_real(tmp_path / "real", n=6)
    settings = partial_settings("real_image_syn_report", shard_size=4)
    with pytest.raises(IncompleteGeneration, match="2 of 6 samples were not made .*i2r:timeouts: 2"):
        build_partial_dataset(real, tmp_path / "out", settings, DownDescriber(down={1, 4}), NER, {})
    again = DownDescriber()
    out = build_partial_dataset(real, tmp_path / "out", settings, again, NER, {})
    assert sorted(again.calls) == [1 * 101, 4 * 101]  # only the two rows the outage hit
    whole = build_partial_dataset(real, tmp_path / "whole", settings, DownDescriber(), NER, {})
    pd.testing.assert_frame_equal(read_dataset(out)[0], read_dataset(whole)[0])
    info = read_dataset(out)[1]
    assert info["counts"]["retried"] == 2 and info["counts"]["rows"] == 6 and info["counts"]["failed"] == {}


def test_a_dataset_whose_samples_are_all_dropped_says_so(cache_dir, tmp_path):
    gen = gen_cfg(ARGS)
    gen["llm"]["_target_"] = f"{__name__}.MuteLLM"
    with pytest.raises(ValueError, match="none of the 40 planned samples gave a row"):
        generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)


def test_another_config_in_the_same_output_dir_is_refused(cache_dir, tmp_path):
    out = tmp_path / "ds"
    generate_dataset(
        gen_cfg(SMALL + ["generation.n_samples=20", "generation.shard_size=20", "generation.seed=0"]),
        out,
        cache_dir,
        progress=False,
        until="plan",
    )
    with pytest.raises(FileExistsError, match=r"2 key\(s\) differ: n_samples: 20 there, 40 asked; seed: 0 there, 1"):
        generate_dataset(
            gen_cfg(SMALL + ["generation.n_samples=40", "generation.shard_size=20", "generation.seed=1"]),
            out,
            cache_dir,
            progress=False,
        )
    # Transport settings are no part of the config's identity: a re-run through another server resumes.
    same = gen_cfg(SMALL + ["generation.n_samples=20", "generation.shard_size=20", "generation.seed=0"])
    assert generate_dataset(same, out, cache_dir, progress=False) == out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty and holds no generation_config.json"):
        generate_dataset(same, tmp_path / "other", cache_dir, progress=False)


@pytest.mark.slow
def test_generate_py_exits_non_zero_with_the_count_and_the_command(cache_dir, tmp_path):
    args = ARGS + [
        "llm=llama31_8b",
        "llm.base_url=http://127.0.0.1:9/v1",
        "llm.max_retries=0",
        f"output_dir={tmp_path / 'ds'}",
        "progress=false",
    ]
    proc = run_cli(args, cache_dir, tmp_path, script="generate.py")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, out
    assert "40 of 40 samples were not made because a backend failed (llm:connection_errors: 40)" in out, out
    assert "re-running the same command retries exactly these:\n  python generate.py generation.n_samples=120" in out, (
        out
    )
    assert not (tmp_path / "ds" / "manifest.parquet").exists()
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "ds" / "shards").glob("shard_*.json"))]
    assert [len(r["retryable"]) for r in records] == [20, 20]
