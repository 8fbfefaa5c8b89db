"""The test session's own switches."""

import os
from pathlib import Path

import pytest

from tests.conftest import reused_trained_run


def test_a_reused_trained_run_is_refused_in_ci():
    assert reused_trained_run({"SYNCXR_TEST_TRAINED_RUN": "/runs/budget"}) == Path("/runs/budget")
    assert reused_trained_run({"CI": "true"}) is None
    for ci in ("true", "1", "TRUE"):
        with pytest.raises(RuntimeError, match="SYNCXR_TEST_TRAINED_RUN=/runs/budget is set under CI"):
            reused_trained_run({"SYNCXR_TEST_TRAINED_RUN": "/runs/budget", "CI": ci})
    assert reused_trained_run({"SYNCXR_TEST_TRAINED_RUN": "/runs/budget", "CI": "false"}) == Path("/runs/budget")


def test_the_ci_script_says_it_is_ci():
    from tests.helpers import REPO  # noqa: PLC0415

    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    pytest_line = next(i for i, line in enumerate(lines) if "pytest" in line and not line.startswith("#"))
    assert "export CI=true" in lines[:pytest_line]


def test_a_costly_session_fixture_is_used_by_its_one_file_only():
    from tests.conftest import misplaced_one_worker_fixtures  # noqa: PLC0415

    evaluate, slurm = "tests/eval/test_evaluate_trained.py", "tests/launch/test_slurm.py"
    assert misplaced_one_worker_fixtures(f"{evaluate}::t", ["trained_run", "untrained_budget_run", "tmp_path"]) == []
    assert misplaced_one_worker_fixtures(f"{slurm}::t[1]", ["slurm_cluster", "cache_dir"]) == []
    assert misplaced_one_worker_fixtures("tests/train/test_x.py::t", ["tmp_path", "syn_dir"]) == []
    assert misplaced_one_worker_fixtures("tests/train/test_x.py::t", ["trained_run", "slurm_cluster"]) == [
        f"trained_run (its tests live in {evaluate})",
        f"slurm_cluster (its tests live in {slurm})",
    ]


def test_the_one_worker_fixtures_are_session_fixtures_and_xdist_keeps_files_together():
    import ast  # noqa: PLC0415
    import shlex  # noqa: PLC0415

    import tomllib  # noqa: PLC0415

    from tests.conftest import ONE_WORKER_FIXTURES  # noqa: PLC0415
    from tests.helpers import REPO  # noqa: PLC0415

    session_fixtures = {
        node.name
        for path in (REPO / "tests").rglob("conftest.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and any("scope='session'" in ast.unparse(d) for d in node.decorator_list)
    }
    assert set(ONE_WORKER_FIXTURES) <= session_fixtures  # a renamed fixture would lose its one worker
    assert all((REPO / path).is_file() for path in ONE_WORKER_FIXTURES.values())
    addopts = shlex.split(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    )
    assert addopts[addopts.index("--dist") + 1] == "loadfile"  # else one file's tests may go to two workers


def test_an_xdist_worker_runs_torch_on_one_thread():
    import torch  # noqa: PLC0415

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("run without xdist (-n 0)")
    assert os.environ["OMP_NUM_THREADS"] == "1" and torch.get_num_threads() == 1


def test_a_directory_built_in_is_built_once_by_concurrent_askers_and_redone_after_a_failure(tmp_path):
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    from tests.conftest import build_in  # noqa: PLC0415

    builds = []

    def build(out):
        builds.append(out)
        time.sleep(0.3)  # the second asker arrives while the first builds
        (out / "result").write_text("built")

    out = tmp_path / "shared"
    got = []
    askers = [threading.Thread(target=lambda: got.append(build_in(out, build))) for _ in range(2)]
    for t in askers:
        t.start()
    for t in askers:
        t.join(timeout=30)
    assert builds == [out] and got == [out, out] and (out / "result").read_text() == "built"
    assert build_in(out, build) == out and len(builds) == 1  # a later asker reuses it too

    def failing(d):
        (d / "partial").write_text("")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        build_in(tmp_path / "other", failing)
    assert build_in(tmp_path / "other", build) == tmp_path / "other" and len(builds) == 2
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == [".built", "result"]  # the failed one's files gone


def test_the_slowest_files_exist_and_are_handed_out_first():
    """A renamed file would silently fall back to the end of the queue, where it makes the tail."""
    from tests.conftest import SLOWEST_FILES, pytest_collection_modifyitems  # noqa: PLC0415
    from tests.helpers import REPO  # noqa: PLC0415

    assert [f for f in SLOWEST_FILES if not (REPO / f).is_file()] == []

    class Item:
        def __init__(self, nodeid):
            self.nodeid = nodeid

    items = [
        Item("tests/a.py::t1"),
        Item(f"{SLOWEST_FILES[1]}::t"),
        Item("tests/b.py::t"),
        Item(f"{SLOWEST_FILES[0]}::t"),
    ]
    pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == [
        f"{SLOWEST_FILES[0]}::t",
        f"{SLOWEST_FILES[1]}::t",
        "tests/a.py::t1",
        "tests/b.py::t",
    ]
