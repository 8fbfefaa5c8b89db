"""Durable writes: all or nothing, fsynced (file, then its directory) before they count."""

from __future__ import annotations

import os

import matplotlib
import pytest

from syncxr.data import durable
from syncxr.data.durable import atomic_path, save_figure_atomic, write_json_atomic

matplotlib.use("Agg")


@pytest.fixture
def synced(monkeypatch):
    """(device, inode) of everything os.fsync was called on, in order."""
    seen = []
    real = os.fsync

    def fsync(fd):
        st = os.fstat(fd)
        seen.append((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def _id(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, synced):
    write_json_atomic(tmp_path / "metrics.json", {"auc": 0.5})
    assert synced == [_id(tmp_path / "metrics.json"), _id(tmp_path)]  # the file, then the rename
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "metrics.json") as tmp:
        tmp.write_text('{"auc": 0.')  # killed half way (here: an exception)
        raise RuntimeError("interrupted")
    assert (tmp_path / "metrics.json").read_text() == '{\n  "auc": 0.5\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_figures_are_written_in_the_format_of_their_suffix(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure_atomic(fig, tmp_path / "loss.png", dpi=50)
    save_figure_atomic(fig, tmp_path / "loss.pdf")
    plt.close(fig)
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "loss.pdf").read_bytes()[:4] == b"%PDF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.pdf", "loss.png"]


def test_replace_dir_syncs_the_tree_and_keeps_an_existing_target(tmp_path, synced):
    src = tmp_path / ".tmp"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a").write_text("1")
    assert durable.replace_dir(src, tmp_path / "done")
    assert (tmp_path / "done" / "sub" / "a").read_text() == "1"
    assert {_id(tmp_path / "done" / "sub" / "a"), _id(tmp_path / "done" / "sub"), _id(tmp_path)} <= set(synced)
    (src / "b").mkdir(parents=True)
    assert not durable.replace_dir(src, tmp_path / "done")  # someone else's is in place: keep it
    assert not src.exists() and (tmp_path / "done" / "sub" / "a").is_file()


def test_link_file_copies_where_hard_links_are_refused_never_a_symlink(tmp_path, monkeypatch):
    # A symbolic link would lead out of the curated dataset, and load_table refuses those.
    (tmp_path / "src.png").write_bytes(b"pixels")
    durable.link_file(tmp_path / "src.png", tmp_path / "linked.png")
    assert os.path.samefile(tmp_path / "src.png", tmp_path / "linked.png")

    def no_hard_links(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_hard_links)
    durable.link_file(tmp_path / "src.png", tmp_path / "copied.png")
    assert not (tmp_path / "copied.png").is_symlink() and (tmp_path / "copied.png").read_bytes() == b"pixels"
