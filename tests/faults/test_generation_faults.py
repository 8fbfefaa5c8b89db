"""Generation under faults: killed anywhere, an LLM server that dies and comes back, a killed
worker, generate.py racing the generation a training job triggers. Each ends with the dataset an
uninterrupted run makes: no row lost, none duplicated."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from syncxr.data.dataset_format import is_complete, read_dataset
from syncxr.dataset_dirs import build_generated_dir, generate_dataset
from syncxr.generation.generation_job import generated_dir, generation_config
from syncxr.generation.shard_store import IncompleteGeneration, ShardStore
from tests.generation.template_server import TemplateChatServer
from tests.generation.test_pipeline import SMALL, gen_cfg
from tests.generation.test_workers import assert_identical
from tests.helpers import compose_train, run_cli

pytestmark = pytest.mark.slow
ARGS = SMALL + ["generation.n_samples=60", "generation.shard_size=10"]  # six shards


class GenerationEvents:
    """Every atomic rename (stage files, shard records, manifest) and image write of a generation is
    one event; with `kill_at` the process SIGKILLs itself just before that event."""

    def __init__(self, kill_at: int | None = None):
        self.kill_at, self.count = kill_at, 0
        self.targets: list[str] = []  # the file name of each event

    def install(self, patch) -> GenerationEvents:
        for owner, name in ((os, "replace"), (Image.Image, "save")):
            patch(owner, name, self._wrap(getattr(owner, name)))
        return self

    def _wrap(self, real):
        def operation(*args, **kwargs):
            self.count += 1
            self.targets.append(Path(str(args[1] if len(args) > 1 else args[0].filename)).name)
            if self.count == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return operation


def _killed_child(gen, out, cache_dir, kill_at, worker, workers):
    GenerationEvents(kill_at).install(setattr)
    generate_dataset(gen, out, cache_dir, progress=False, worker=worker, workers=workers)


def run_killed(gen, out: Path, cache_dir: Path, kill_at: int, worker: int = 0, workers: int = 1) -> None:
    """Runs the generation in a forked process that is SIGKILLed just before event `kill_at`."""
    child = mp.get_context("fork").Process(target=_killed_child, args=(gen, out, cache_dir, kill_at, worker, workers))
    child.start()
    child.join(timeout=300)
    assert child.exitcode == -signal.SIGKILL, f"the generation was not killed (exit code {child.exitcode})"


@pytest.fixture(scope="module")
def reference(cache_dir, tmp_path_factory):
    return generate_dataset(gen_cfg(ARGS), tmp_path_factory.mktemp("ref") / "ds", cache_dir, progress=False)


def test_killed_at_three_random_points_each_resumes_to_the_uninterrupted_dataset(
    cache_dir, tmp_path, reference, monkeypatch
):
    gen = gen_cfg(ARGS)
    events = GenerationEvents().install(monkeypatch.setattr)
    generate_dataset(gen, tmp_path / "counted", cache_dir, progress=False)
    monkeypatch.undo()
    # One seeded random point in each third of the run (early stages, mid shards, late shards + manifest).
    rng, bounds = np.random.default_rng(11), np.linspace(1, events.count + 1, 4).astype(int)
    points = [int(rng.integers(lo, hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    for point in points:
        out = tmp_path / f"killed_at_{point}"
        run_killed(gen, out, cache_dir, int(point))
        assert not is_complete(out)
        assert_identical(generate_dataset(gen, out, cache_dir, progress=False), reference)


def test_an_llm_server_that_dies_mid_run_and_comes_back_loses_no_row(cache_dir, tmp_path):
    llm = ["llm=llama31_8b", "llm.max_retries=1", "llm.backoff_s=0.05"]
    steady = TemplateChatServer()
    try:
        ref = generate_dataset(
            gen_cfg(ARGS + llm + [f"llm.base_url={steady.url}"]), tmp_path / "ref", cache_dir, progress=False
        )
    finally:
        steady.close()
    flaky = TemplateChatServer(down_after=40, down_for=1.5)  # down from the 40th answer for 1.5 s
    gen = gen_cfg(ARGS + llm + [f"llm.base_url={flaky.url}"])
    out = tmp_path / "ds"
    try:
        with pytest.raises(IncompleteGeneration) as first:
            generate_dataset(gen, out, cache_dir, progress=False)
        assert flaky.outages == 1
        time.sleep(1.6)  # it is back
        done = generate_dataset(gen, out, cache_dir, progress=False)
    finally:
        flaky.close()
    lost = first.value.retryable
    assert 0 < lost < 60  # the outage hit some samples, not the whole run
    assert_identical_rows(done, ref)
    info = read_dataset(done)[1]
    assert info["counts"]["retried"] == lost and info["backend"]["llm_connection_errors"] > 0


def assert_identical_rows(a: Path, b: Path) -> None:
    """assert_identical, but the backend counters (errors and retries) may differ."""
    da, ia = read_dataset(a)
    db, ib = read_dataset(b)
    import pandas as pd  # noqa: PLC0415

    pd.testing.assert_frame_equal(da, db)
    assert ia["counters"] == ib["counters"] and ia["entity_stats"] == ib["entity_stats"]
    for rel in da["image"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_a_killed_worker_is_redone_by_rerunning_its_command(cache_dir, tmp_path, reference, monkeypatch):
    gen = gen_cfg(ARGS)
    for d in ("counted", "ds"):
        assert generate_dataset(gen, tmp_path / d, cache_dir, progress=False, worker=0, workers=2) is None
    events = GenerationEvents().install(monkeypatch.setattr)
    generate_dataset(gen, tmp_path / "counted", cache_dir, progress=False, worker=1, workers=2)
    monkeypatch.undo()
    # Worker 1 (shards 1, 3, 5) killed just before its second shard's record is committed.
    out = tmp_path / "ds"
    run_killed(gen, out, cache_dir, kill_at=events.targets.index("shard_00003.json") + 1, worker=1, workers=2)
    store = ShardStore(out / "shards")
    assert store.record(1) is not None and store.record(3) is None and not is_complete(out)
    assert generate_dataset(gen, out, cache_dir, progress=False, worker=1, workers=2) == out
    assert_identical(out, reference)


def test_generate_py_and_a_training_jobs_generation_racing_on_one_hash(cache_dir, tmp_path):
    train_gen = compose_train(
        [
            "generation.n_samples=60",
            "generation.shard_size=10",
            "corpus.n=200",
            "corpus.image_size=64",
            "imagegen.image_size=64",
        ]
    ).generation
    target = generated_dir(gen_cfg(ARGS), tmp_path / "cache")
    assert target == generated_dir(generation_config(train_gen), tmp_path / "cache")  # one hash
    proc = run_cli([*ARGS, "progress=false"], tmp_path / "cache", tmp_path, script="generate.py")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (target / "shards" / "shard_00000.json").exists():
        time.sleep(0.05)
    assert proc.poll() is None, "generate.py finished before the race"
    got = build_generated_dir(train_gen, tmp_path / "cache", "data.syn")  # what train.py calls
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    assert got == target and f"dataset: {target}" in log
    store = ShardStore(target / "shards")
    assert [store.record(k)["round"] for k in range(6)] == [0] * 6  # each shard made once, by one of them
    alone = generate_dataset(gen_cfg(ARGS), tmp_path / "alone", cache_dir, progress=False)
    assert_identical(target, alone)
