"""The test session's own switches."""

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
