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


def test_tests_of_a_costly_session_fixture_share_one_xdist_worker():
    from tests.conftest import xdist_group_of  # noqa: PLC0415
    assert xdist_group_of("t", ["tmp_path", "cache_dir", "syn_dir"]) is None
    assert xdist_group_of("t", ["trained_run", "tmp_path"]) == xdist_group_of("t", ["untrained_budget_run"])
    assert xdist_group_of("t", ["slurm_cluster", "cache_dir"]) == "slurm_cluster"
    with pytest.raises(pytest.UsageError, match="t uses fixtures of two one-worker groups"):
        xdist_group_of("t", ["trained_run", "slurm_cluster"])


def test_the_one_worker_fixtures_are_session_fixtures_and_the_groups_are_used():
    import ast  # noqa: PLC0415
    import shlex  # noqa: PLC0415
    import tomllib  # noqa: PLC0415

    from tests.conftest import ONE_WORKER_FIXTURES  # noqa: PLC0415
    from tests.helpers import REPO  # noqa: PLC0415
    session_fixtures = {node.name for path in (REPO / "tests").rglob("conftest.py")
                        for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)
                        and any("scope='session'" in ast.unparse(d) for d in node.decorator_list)}
    assert set(ONE_WORKER_FIXTURES) <= session_fixtures  # a renamed fixture would lose its group
    addopts = shlex.split(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
                          ["addopts"])
    assert "loadgroup" in addopts[addopts.index("--dist") + 1:][:1]  # xdist ignores the groups otherwise


def test_an_xdist_worker_runs_torch_on_one_thread():
    import torch  # noqa: PLC0415
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("run without xdist (-n 0)")
    assert os.environ["OMP_NUM_THREADS"] == "1" and torch.get_num_threads() == 1
