"""Shared fixtures: tiny phantom data and a tiny text encoder, built once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("WANDB_MODE", "disabled")  # never reach for a W&B server from tests
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pytest-xdist (pyproject's addopts) runs the tests in one worker process per core: a second torch
# thread per worker would only oversubscribe the cores, and tiny ops then wait on a busy thread.
# Set before torch is imported, so that the entry points the tests start inherit it too.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from syncxr.models.phantom_text_encoder import PhantomTextEncoderSpec, ensure_phantom_text_encoder  # noqa: E402
from syncxr.phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus  # noqa: E402

# Session fixtures too costly to build in every xdist worker, and the one test file that may use each:
# pyproject's `--dist loadfile` runs a file's tests on one worker, so each is built once per session.
# (xdist's `loadgroup` marks would allow any file, but pytest 9 ignores them: xdist rewrites a nodeid
# attribute that pytest 9 no longer reads.) A costly fixture that several files need builds its
# directory with `built_once` instead: the workers share it (tests/launch/conftest.py's references).
ONE_WORKER_FIXTURES = {
    "trained_run": "tests/eval/test_evaluate_trained.py",
    "untrained_budget_run": "tests/eval/test_evaluate_trained.py",
    "slurm_cluster": "tests/launch/test_slurm.py",
}


def misplaced_one_worker_fixtures(nodeid: str, fixturenames) -> list[str]:
    """What a test of `nodeid` is wrong to use here: the one-worker fixtures whose file is another."""
    path = nodeid.split("::", 1)[0]
    return [
        f"{f} (its tests live in {ONE_WORKER_FIXTURES[f]})"
        for f in fixturenames
        if f in ONE_WORKER_FIXTURES and ONE_WORKER_FIXTURES[f] != path
    ]


def pytest_itemcollected(item):
    misplaced = misplaced_one_worker_fixtures(item.nodeid, getattr(item, "fixturenames", ()))
    if misplaced:  # elsewhere, a second xdist worker would build a second copy
        raise pytest.UsageError(
            f"{item.nodeid} uses {', '.join(misplaced)}: move it there, or see ONE_WORKER_FIXTURES in tests/conftest.py"
        )


# The test files that cost the most, costliest first (seconds of one worker, measured on a full run:
# docs/performance.md#the-test-suite). xdist hands files out in collection order, so these start first
# and the cheap files fill in around them; handed out last, the trained-model file alone once ran
# five minutes while the other worker sat idle (the suite used 134 % of 2 cores).
SLOWEST_FILES = (
    "tests/eval/test_evaluate_trained.py",
    "tests/launch/test_slurm.py",
    "tests/test_paper_mode.py",
    "tests/launch/test_multiprocess_training.py",
    "tests/test_configs.py",
    "tests/generation/test_pipeline.py",
    "tests/faults/test_generation_faults.py",
    "tests/test_paper_prerequisites.py",
    "tests/generation/test_backend_failures.py",
    "tests/test_config_validation.py",
    "tests/train/test_train_e2e.py",
    "tests/test_secrets.py",
    "tests/faults/test_checkpoint_kill.py",
    "tests/launch/test_submitit_small.py",
    "tests/generation/test_workers.py",
    "tests/test_gpu_check.py",
    "tests/results/test_provenance.py",
    "tests/launch/test_data_parallel.py",
)


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest as collected


BUILT = ".built"  # written last into a directory `build_in` finished


def build_in(out: Path, build) -> Path:
    """`build(out)`, unless a process finished it there before: a file lock makes the others wait
    for the first, then reuse what it built (a build that failed left no mark and is redone)."""
    with FileLock(str(out) + ".lock"):
        if not (out / BUILT).is_file():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            build(out)
            (out / BUILT).touch()
    return out


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A session fixture's directory built once per session even when the tests of several files
    use it: under xdist in the session's temp root that all workers share (beside their own), so
    the second worker to ask waits for the first worker's build instead of repeating it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return build_in(tmp_path_factory.getbasetemp().parent / name, build)
    return build_in(tmp_path_factory.mktemp(name), build)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A cache shared by the whole session (datasets, models), like a user's .cache/syncxr."""
    d = tmp_path_factory.mktemp("cache")
    os.environ["SYNCXR_CACHE"] = str(d)
    return d


@pytest.fixture(scope="session")
def syn_dir(cache_dir) -> Path:
    return ensure_phantom_corpus(PhantomCorpusSpec(kind="syn", n=96, seed=3, image_size=64), cache_dir, progress=False)


@pytest.fixture(scope="session")
def real_dir(cache_dir) -> Path:
    from tests.helpers import REAL_DIR_CORPUS  # noqa: PLC0415

    spec = PhantomCorpusSpec(**{k: v for k, v in REAL_DIR_CORPUS.items() if k != "builder"})
    return ensure_phantom_corpus(spec, cache_dir, progress=False)


@pytest.fixture(scope="session")
def real_dir_128(cache_dir) -> Path:
    """A real corpus at the resolution the heuristic judge's thresholds are set for (128 px)."""
    spec = PhantomCorpusSpec(
        kind="real", n=160, seed=4, image_size=128, low_quality_rate=0.08, wrong_view_rate=0.05, unpaired_rate=0.05
    )
    return ensure_phantom_corpus(spec, cache_dir, progress=False)


@pytest.fixture(scope="session")
def tiny_text_path(cache_dir) -> str:
    spec = PhantomTextEncoderSpec(
        hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, vocab_size=400, n_reports=300
    )
    return str(ensure_phantom_text_encoder(spec, cache_dir))


@pytest.fixture(scope="session")
def tiny_llm_path(tmp_path_factory) -> str:
    """A tiny chat LLM that answers tests.tiny_models.LLM_SCRIPT to any prompt."""
    from tests.tiny_models import LLM_SCRIPT, tiny_llm

    return str(tiny_llm(tmp_path_factory.mktemp("tiny_llm"), scripted=LLM_SCRIPT))


@pytest.fixture(scope="session")
def tiny_ner_path(tmp_path_factory) -> str:
    """A tiny token classifier that tags word pieces as tests.tiny_models.NER_SCRIPT says."""
    from tests.tiny_models import NER_SCRIPT, tiny_ner

    return str(tiny_ner(tmp_path_factory.mktemp("tiny_ner"), NER_SCRIPT))


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory) -> str:
    from tests.tiny_models import tiny_stable_diffusion

    return str(tiny_stable_diffusion(tmp_path_factory.mktemp("tiny_sd")))


@pytest.fixture(scope="session")
def tiny_dino_path(tmp_path_factory) -> str:
    from tests.tiny_models import tiny_dinov2

    return str(tiny_dinov2(tmp_path_factory.mktemp("tiny_dino")))


def reused_trained_run(env) -> Path | None:
    """The run dir SYNCXR_TEST_TRAINED_RUN names (reused when iterating locally); refused under CI,
    which must score the run it trains itself, never one left over from an older commit."""
    run = env.get("SYNCXR_TEST_TRAINED_RUN")
    if run and env.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError(
            f"SYNCXR_TEST_TRAINED_RUN={run} is set under CI={env['CI']}: CI trains its own run; "
            "unset SYNCXR_TEST_TRAINED_RUN"
        )
    return Path(run) if run else None


@pytest.fixture(scope="session")
def trained_run(cache_dir, tmp_path_factory) -> Path:
    """A ConVIRT checkpoint trained with the BUDGET recipe (zero-shot CheXpert AUC >= BUDGET_MIN_AUC).
    SYNCXR_TEST_TRAINED_RUN=<run dir> reuses a finished BUDGET run instead (locally, never in CI)."""
    from syncxr.train.training_job import run_training  # noqa: PLC0415
    from tests.helpers import BUDGET, compose_train  # noqa: PLC0415

    reused = reused_trained_run(os.environ)
    if reused is not None:
        return reused
    out = tmp_path_factory.mktemp("trained")
    run_training(compose_train(BUDGET), out)
    return out


@pytest.fixture(scope="session")
def untrained_budget_run(cache_dir, tmp_path_factory) -> Path:
    """The BUDGET recipe's model before its first step (trainer.max_steps=0), evaluated like
    `trained_run`: the untrained control of the tests that score the trained one."""
    from syncxr.train.training_job import run_training  # noqa: PLC0415
    from tests.helpers import BUDGET, compose_train  # noqa: PLC0415

    out = tmp_path_factory.mktemp("untrained_budget")
    run_training(compose_train(BUDGET + ["trainer.max_steps=0"]), out)
    return out
