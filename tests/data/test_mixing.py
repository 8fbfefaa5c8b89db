import pandas as pd
import pytest

from syncxr.data.mixing import load_table, mix_tables


def test_load_table_selects_split_and_resolves_paths(syn_dir):
    train = load_table(syn_dir, "train")
    val = load_table(syn_dir, "val")
    assert set(train["split"]) == {"train"} and len(train) + len(val) == 96
    assert all(p.startswith(str(syn_dir)) for p in train["path"])


def test_mix_all_keeps_every_row_and_its_source(syn_dir, real_dir):
    syn, real = load_table(syn_dir), load_table(real_dir)
    mix = mix_tables(real, syn, None, seed=0)
    assert len(mix) == len(syn) + len(real)
    assert mix["source"].value_counts().to_dict() == {"phantom_real": len(real), "phantom_syn": len(syn)}


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.45])
def test_syn_fraction_sets_the_share_of_a_real_sized_set(syn_dir, real_dir, fraction):
    syn, real = load_table(syn_dir), load_table(real_dir)
    mix = mix_tables(real, syn, fraction, seed=0)
    assert len(mix) == len(real)
    assert (mix["source"] == "phantom_syn").sum() == round(fraction * len(real))
    assert not mix["id"].duplicated().any()
    pd.testing.assert_frame_equal(mix, mix_tables(real, syn, fraction, seed=0))


def test_out_of_range_fraction_and_too_few_synthetic_rows_fail(syn_dir, real_dir):
    syn, real = load_table(syn_dir), load_table(real_dir)
    with pytest.raises(ValueError, match=r"syn_fraction must be in \[0, 1\]"):
        mix_tables(real, syn, 1.5, seed=0)
    with pytest.raises(ValueError, match="synthetic dataset has"):
        mix_tables(real, syn, 1.0, seed=0)  # 96 synthetic rows cannot fill a 200-row set
    with pytest.raises(ValueError, match="neither"):
        mix_tables(None, None, None, seed=0)


def _dataset_with_images(tmp_path, images: list[str]):
    """A dataset directory whose manifest names `images` (one row each); the files are not written."""
    from syncxr.data.dataset_format import write_parquet_atomic

    d = tmp_path / "ds"
    d.mkdir()
    rows = [
        {
            "id": f"r{i}",
            "image": p,
            "findings": "No effusion.",
            "impression": "Normal.",
            "entities": [],
            "source": "test",
            "split": "train",
        }
        for i, p in enumerate(images)
    ]
    write_parquet_atomic(d / "manifest.parquet", pd.DataFrame(rows))
    return d


@pytest.mark.parametrize("image", ["../other/x.png", "images/../../x.png", "/etc/hostname"])
def test_image_paths_that_leave_the_dataset_are_refused_unless_allowed(tmp_path, image):
    d = _dataset_with_images(tmp_path, ["images/a.png", "images/sub/../b.png", image])
    with pytest.raises(
        ValueError,
        match=rf"{d}/manifest.parquet: row 2 \(id 'r2'\): image .* is outside the "
        r"dataset directory .*data.allow_external_images=true",
    ):
        load_table(d)
    table = load_table(d, allow_external_images=True)
    assert list(table["path"]) == [str(d / "images/a.png"), str(d / "images/sub/../b.png"), str(d / image)]
    assert list(table["manifest_row"]) == [0, 1, 2] and set(table["manifest"]) == {str(d / "manifest.parquet")}


def test_images_linked_out_of_the_dataset_are_refused_unless_allowed(tmp_path):
    d = _dataset_with_images(tmp_path, ["images/a.png", "images/linked.png"])
    (tmp_path / "secret.png").write_bytes(b"not yours")
    (d / "images").mkdir()
    (d / "images" / "linked.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(
        ValueError,
        match=rf"row 1 \(id 'r1'\): image 'images/linked.png' is a symbolic link .* to "
        rf"{tmp_path}/secret.png, outside the dataset directory .*"
        r"data.allow_external_images=true",
    ):
        load_table(d)
    assert list(load_table(d, allow_external_images=True)["id"]) == ["r0", "r1"]
    # A dataset directory that is itself a link is read as usual.
    (d / "images" / "linked.png").unlink()
    (tmp_path / "alias").symlink_to(d)
    assert len(load_table(tmp_path / "alias")) == 2
