"""bench/gpu_check.py (the script to run where GPUs are) runs its every part on the CPU with --tiny."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


def test_gpu_check_runs_on_the_cpu_with_tiny_settings(cache_dir, tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--tiny", "--cache", str(cache_dir), "--out", str(out)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["tiny"] and report["device"] == "cpu"
    for name in ("convirt_step", "gloria_step"):
        assert report[name]["ms_per_step"] > 0 and report[name]["batch"] == 8, report[name]
    assert set(report["loader"]) == {"png", "jpeg_q95"}
    assert all(r["images_per_s"] > 0 and r["workers"] == 2 for r in report["loader"].values())
    # The DDP part ran as two processes (gloo on the CPU).
    assert report["convirt_ddp2_step"]["processes"] == 2, report["convirt_ddp2_step"]
    # The learned text-to-image pipeline drew its images (float32 on the CPU).
    assert report["learned_t2i"]["fp32_images_per_s"] > 0 and report["learned_t2i"]["images"] == 16
    # The learned report LM wrote its held-out FINDINGS (float32 on the CPU), its exact rate a share.
    lm = report["learned_lm"]
    assert lm["fp32_requests_per_s"] > 0 and lm["requests"] == 16 and 0 <= lm["fp32_exact"] <= 1, lm
