import logging

from syncxr.learned.model_cache import damage, ensure_model, model_dir


def _builder(calls):
    def build(tmp):
        calls.append(tmp)
        (tmp / "weights.bin").write_bytes(b"w" * 100)
        (tmp / "config.json").write_text("{}")
        return {"seconds": 1.5}

    return build


def test_built_once_and_reused(tmp_path):
    calls = []
    a = ensure_model(tmp_path, "lm", {"layers": 2}, _builder(calls))
    b = ensure_model(tmp_path, "lm", {"layers": 2}, _builder(calls))
    assert a == b and len(calls) == 1 and damage(a) is None
    assert ensure_model(tmp_path, "lm", {"layers": 3}, _builder(calls)) != a  # another config, another model
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]  # no temporary left


def test_damaged_directory_is_rebuilt_naming_it(tmp_path, caplog):
    calls = []
    target = ensure_model(tmp_path, "lm", {"layers": 2}, _builder(calls))
    (target / "weights.bin").write_bytes(b"x" * 10)  # truncated by a crash or a copy
    assert "weights.bin" in damage(target)
    with caplog.at_level(logging.WARNING):
        again = ensure_model(tmp_path, "lm", {"layers": 2}, _builder(calls))
    assert again == target and len(calls) == 2 and damage(again) is None
    assert str(target) in caplog.text


def test_a_failed_build_leaves_nothing_to_load(tmp_path):
    def broken(tmp):
        (tmp / "config.json").write_text("{}")
        raise RuntimeError("out of memory")

    try:
        ensure_model(tmp_path, "lm", {}, broken)
    except RuntimeError:
        pass
    assert not model_dir(tmp_path, "lm", {}).exists()
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []
