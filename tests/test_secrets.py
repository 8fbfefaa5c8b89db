"""No API key is ever written: generate.py and a tiny train.py run with an OpenAI-compatible LLM,
the key planted in the environment, W&B logging offline; no file either run writes (outputs,
.hydra/, the cache, the W&B offline runs) holds the key, nor does any file name."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.generation.template_server import TemplateChatServer
from tests.helpers import REPO, TINY

pytestmark = pytest.mark.slow


def _run(script: str, args: list[str], env: dict) -> str:
    proc = subprocess.run(
        [sys.executable, str(REPO / script), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_a_planted_api_key_is_sent_but_never_written(tmp_path, cache_dir, tiny_text_path):
    # The session's cache (tiny text tower, twins already built); every file in it is searched too.
    key = "sk-planted-" + secrets.token_hex(12)
    env = {
        **os.environ,
        "SYNCXR_LLM_KEY": key,
        "SYNCXR_CACHE": str(cache_dir),
        "SYNCXR_OUTPUTS": str(tmp_path / "outputs"),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path / "wandb"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb_cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb_config"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb_data"),
    }
    generation = list(TINY)  # generate.py takes train.py's overrides: the same list names the same dataset
    server = TemplateChatServer()
    try:
        logs = _run(
            "generate.py",
            [*generation, "llm=llama31_8b", f"llm.base_url={server.url}", "logger=wandb", "logger.mode=offline"],
            env,
        )
    finally:
        server.close()
    assert server.requests > 0 and set(server.seen_authorizations()) == {f"Bearer {key}"}  # the key was used
    # Training finds that dataset by the hash of its generation settings: neither the key nor the
    # server's URL (now another) is part of it, so no request is made.
    logs += _run(
        "train.py",
        [
            *TINY,
            "trainer.max_steps=2",
            "llm=llama31_8b",
            "llm.base_url=http://127.0.0.1:9/v1",
            "logger=wandb",
            "logger.mode=offline",
        ],
        env,
    )
    written = [p for root in (tmp_path, cache_dir) for p in root.rglob("*") if p.is_file()]
    assert len(list(tmp_path.glob("outputs/*/*/.hydra/config.yaml"))) == 2  # both runs wrote where we look
    assert len(list(tmp_path.rglob("offline-run-*"))) == 2 and list((cache_dir / "generated").iterdir())
    leaks = [str(p) for p in written if key.encode() in p.read_bytes() or key in str(p)]
    assert not leaks, leaks
    assert key not in logs
