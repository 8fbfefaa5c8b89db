"""Generation split over K workers sharing one output directory gives the single-process dataset."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from syncxr.data.dataset_format import read_dataset
from syncxr.dataset_dirs import corpus_reader, generate_dataset
from syncxr.generation.generation_job import run_generation, worker_of
from syncxr.generation.shard_store import ShardStore
from tests.generation.test_pipeline import SMALL, gen_cfg
from tests.helpers import run_cli

# Five shards over three workers: 2 + 2 + 1.
ARGS = SMALL + ["generation.n_samples=50", "generation.shard_size=10"]


def assert_identical(a: Path, b: Path) -> None:
    """Same manifest, ids, texts, image bytes and dataset.json."""
    da, ia = read_dataset(a)
    db, ib = read_dataset(b)
    pd.testing.assert_frame_equal(da, db)
    assert ia == ib
    assert sorted(p.name for p in (a / "images").iterdir()) == sorted(p.name for p in (b / "images").iterdir())
    for rel in da["image"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.fixture(scope="module")
def one_worker(cache_dir, tmp_path_factory) -> Path:
    return generate_dataset(gen_cfg(ARGS), tmp_path_factory.mktemp("k1") / "ds", cache_dir, progress=False)


def test_three_concurrent_workers_make_the_single_process_dataset(cache_dir, tmp_path, one_worker):
    gen, out = gen_cfg(ARGS), tmp_path / "k3"
    corpus_reads, results, errors = [], {}, []
    read = corpus_reader(gen["corpus"], cache_dir)

    def counted_read():
        corpus_reads.append(1)
        return read()

    def work(w):
        try:
            results[w] = run_generation(gen, out, counted_read, progress=False, worker=w, workers=3)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(corpus_reads) == 1  # the vocabulary (and plan) were made once, under the directory lock
    # The last one to finish wrote the manifest; a worker that started after that finds it complete.
    done = [str(p) for p in results.values() if p is not None]
    assert len(results) == 3 and done and set(done) == {str(out)}
    store = ShardStore(out / "shards")
    assert [store.record(k)["round"] for k in range(5)] == [0] * 5  # every shard made exactly once
    assert_identical(out, one_worker)


def test_a_worker_makes_only_its_shards_and_the_last_one_finishes(cache_dir, tmp_path, one_worker):
    gen, out = gen_cfg(ARGS), tmp_path / "k2"
    assert generate_dataset(gen, out, cache_dir, progress=False, worker=1, workers=2) is None
    store = ShardStore(out / "shards")
    assert [store.record(k) is not None for k in range(5)] == [False, True, False, True, False]
    assert not (out / "manifest.parquet").exists()
    assert generate_dataset(gen, out, cache_dir, progress=False, worker=0, workers=2) == out
    assert_identical(out, one_worker)


def test_worker_settings_are_checked():
    assert worker_of(None, 1) == (0, 1) and worker_of(2, 3) == (2, 3)
    with pytest.raises(ValueError, match=r"python generate.py -m workers=3"):
        worker_of(None, 3)
    with pytest.raises(ValueError, match=r"worker must be in 0..2"):
        worker_of(3, 3)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        worker_of(0, 0)


@pytest.mark.slow
def test_a_multirun_of_workers_as_local_processes(cache_dir, tmp_path, one_worker):
    """The command a user runs: one submitit job (a process of its own) per worker. Two workers
    (3 + 2 shards): each process costs seconds of imports, and three concurrent workers are the
    test above's."""
    out = tmp_path / "k2"
    proc = run_cli(
        [
            "-m",
            "workers=2",
            "hydra/launcher=submitit_local",
            *ARGS,
            f"output_dir={out}",
            "progress=false",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cache_dir,
        tmp_path,
        script="generate.py",
    )
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log
    assert len(list((tmp_path / "sweep").glob("worker*/.hydra"))) == 2
    assert_identical(out, one_worker)
