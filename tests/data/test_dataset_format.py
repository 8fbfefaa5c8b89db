import pandas as pd
import pytest

from syncxr.data.dataset_format import DatasetBuilder, config_hash, read_dataset, write_parquet_atomic


def _row(i, **kw):
    row = {
        "id": f"r{i}",
        "image": f"images/r{i}.png",
        "findings": "No effusion.",
        "impression": "Normal.",
        "entities": [{"name": "effusion", "type": "NON-ABNORMALITY"}],
        "source": "test",
        "split": "train",
    }
    row.update(kw)
    return row


def test_round_trip_keeps_entity_records(tmp_path):
    write_parquet_atomic(tmp_path / "manifest.parquet", pd.DataFrame([_row(0), _row(1)]))
    df, info = read_dataset(tmp_path)
    assert list(df["entities"].iloc[0]) == [{"name": "effusion", "type": "NON-ABNORMALITY"}]
    assert info == {}


def test_missing_manifest_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.parquet"):
        read_dataset(tmp_path)


def test_missing_column_is_named(tmp_path):
    df = pd.DataFrame([_row(0)]).drop(columns=["split"])
    df.to_parquet(tmp_path / "manifest.parquet")
    with pytest.raises(ValueError, match=r"\['split'\]"):
        read_dataset(tmp_path)


def test_duplicate_id_is_named(tmp_path):
    pd.DataFrame([_row(0), _row(0)]).to_parquet(tmp_path / "manifest.parquet")
    with pytest.raises(ValueError, match="duplicate id 'r0'"):
        read_dataset(tmp_path)


def test_empty_report_names_the_row(tmp_path):
    pd.DataFrame([_row(0), _row(1, findings="  ", impression="")]).to_parquet(tmp_path / "manifest.parquet")
    with pytest.raises(ValueError, match=r"row 1 \(id 'r1'\) has an empty report"):
        read_dataset(tmp_path)


def test_config_hash_ignores_key_order_but_not_values():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_builder_moves_into_place_only_on_success(tmp_path):
    with DatasetBuilder(tmp_path / "ok") as tmp:
        (tmp / "x").write_text("1")
    assert (tmp_path / "ok" / "x").read_text() == "1"
    with pytest.raises(RuntimeError):
        with DatasetBuilder(tmp_path / "bad") as tmp:
            raise RuntimeError("interrupted")
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ok"]  # no temp leftovers


BUILD_AND_HANG = """
import sys, time
from pathlib import Path
from syncxr.data.dataset_format import DatasetBuilder
with DatasetBuilder(Path(sys.argv[1])) as tmp:
    (tmp / "images" / "big.bin").write_bytes(b"x" * 2_000_000)
    print("building", flush=True)
    time.sleep(600)
"""


def _start_build(target):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", BUILD_AND_HANG, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "building"
    return proc


def test_a_killed_build_leaves_nothing_behind_for_long(tmp_path):
    killed = _start_build(tmp_path / "ds")
    killed.kill()  # SIGKILL: no cleanup code runs
    killed.wait()
    (left,) = tmp_path.glob(".ds.*.building")  # what the killed build left (the old code kept it for good)
    live = _start_build(tmp_path / "ds")  # another build of the same dataset, still running
    try:
        with DatasetBuilder(tmp_path / "ds") as tmp:
            (tmp / "x").write_text("1")
        assert (tmp_path / "ds" / "x").read_text() == "1"
        assert not left.exists()
        (other,) = tmp_path.glob(".ds.*.building")  # the live build's, left alone
        assert (other / "images" / "big.bin").stat().st_size == 2_000_000
    finally:
        live.kill()
        live.wait()
    with pytest.raises(RuntimeError), DatasetBuilder(tmp_path / "ds"):
        raise RuntimeError("the next build finds the second one abandoned too")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
