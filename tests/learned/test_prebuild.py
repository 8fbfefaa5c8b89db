"""`python -m syncxr.learned.prebuild`: every learned phantom backend built into the model cache by
worker processes side by side, as the studies' jobs would build them, and only loaded the next time."""

from __future__ import annotations

import json
import os

from syncxr.learned.model_cache import BUILT
from syncxr.learned.prebuild import learned_presets, main, prebuild, with_learned_groups

# Overrides that fit every learned preset (report LMs, NER, text-to-image), each built in seconds.
TINY = [
    "phantom.n=120",
    "phantom.image_size=32",
    *[f"llm.lm.{k}={v}" for k, v in {"hidden_size": 16, "num_layers": 1, "num_heads": 2}.items()],
    *[f"llm.lm.{k}={v}" for k, v in {"intermediate_size": 32, "steps": 4, "warmup_steps": 1}.items()],
    "llm.lm.request_pairs=20",
    *[f"ner.spec.{k}={v}" for k, v in {"hidden_size": 16, "num_layers": 1, "num_heads": 2}.items()],
    "ner.spec.intermediate_size=32",
    "ner.spec.epochs=1",
    "imagegen.model.image_size=16",
    "imagegen.model.channels=[8,16]",
    "imagegen.model.cross_attention_levels=1",
    "imagegen.model.text_hidden=16",
    "imagegen.model.text_layers=1",
    "imagegen.model.steps=2",
    "imagegen.model.batch_size=8",
]


def test_the_learned_presets_are_found_from_their_targets():
    presets = learned_presets()
    assert {("llm", "phantom_lm_small"), ("llm", "phantom_lm_large"), ("ner", "phantom_ner")} <= set(presets)
    # phantom_diffusion_weak takes its _target_ from phantom_diffusion's file (its defaults): found too.
    assert {("imagegen", "phantom_diffusion"), ("imagegen", "phantom_diffusion_weak")} <= set(presets)
    assert not {p for p in presets if p[1] in ("template", "lexicon", "phantom", "llama31_8b")}
    assert with_learned_groups(presets, "imagegen", "phantom_diffusion_weak") == [
        "llm=phantom_lm_large",
        "ner=phantom_ner",
        "imagegen=phantom_diffusion_weak",
    ]


def test_prebuild_builds_every_learned_backend_side_by_side_then_only_loads_them(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    overrides = [*TINY, f"paths.cache_dir={tmp_path}"]
    seconds = prebuild(overrides, jobs=2)
    # One progress bar, the parent's: the workers' builds draw none, and the parent's env is restored.
    err = capfd.readouterr().err
    assert not [bar for bar in ("report LM", "phantom NER", "phantom text-to-image") if bar in err], err[-2000:]
    assert "TQDM_DISABLE" not in os.environ
    assert set(seconds) == {f"{g}={p}" for g, p in learned_presets()}
    built = sorted((tmp_path / "models").glob(f"*/{BUILT}"))
    kinds = {p.parent.name.rsplit("-", 1)[0] for p in built}
    assert kinds == {"report_lm", "ner", "phantom_t2i", "phantom_t2i_quality"}, kinds
    records = {p: p.read_text() for p in built}
    assert all(json.loads(r)["files"] for r in records.values())
    main(["--jobs", "1", *overrides])  # the command line, a second time: every model is in the cache
    assert sorted((tmp_path / "models").glob(f"*/{BUILT}")) == built
    assert {p: p.read_text() for p in built} == records  # loaded, not trained again
    assert "learned backends ready" in capfd.readouterr().out
