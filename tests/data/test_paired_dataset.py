from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from syncxr.data.images import load_gray
from syncxr.data.mixing import load_table
from syncxr.data.paired_dataset import (
    EpochShuffleSampler,
    ImageTextCollator,
    PairedImageTextDataset,
    augment_on_device,
    pair_text,
)
from syncxr.data.transforms import train_transform


def test_samples_are_fixed_by_seed_epoch_and_index(syn_dir):
    table = load_table(syn_dir)
    ds = PairedImageTextDataset(table, train_transform(48), "sentence", seed=1)
    a_img, a_jit, a_txt = ds[3]
    b_img, b_jit, b_txt = ds[3]
    assert torch.equal(a_img, b_img) and a_jit == b_jit and a_txt == b_txt
    ds.set_epoch(1)
    c_img, c_jit, _ = ds[3]
    assert not torch.equal(a_img, c_img) and a_jit != c_jit  # a new epoch draws anew
    assert a_img.shape == (1, 48, 48) and a_img.dtype == torch.uint8  # uint8 until the device
    # The global RNG is left alone (training RNG streams stay reproducible).
    torch.manual_seed(0)
    ds[0]
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))


def test_text_modes():
    rng = np.random.default_rng(0)
    f, i = "No effusion. Small nodule in the right upper lobe.", "Nodule."
    assert pair_text(f, i, "report", rng) == f"{f} {i}"
    assert pair_text(f, i, "impression", rng) == i
    assert pair_text("", i, "findings", rng) == i  # falls back when a section is empty
    sentences = {pair_text(f, i, "sentence", np.random.default_rng(s)) for s in range(30)}
    assert sentences == {"No effusion.", "Small nodule in the right upper lobe.", "Nodule."}
    with pytest.raises(ValueError, match="unknown text mode"):
        pair_text(f, i, "abstract", rng)


def test_corrupt_and_missing_images_name_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png"):
        load_gray(bad)
    with pytest.raises(FileNotFoundError, match="gone.png"):
        load_gray(tmp_path / "gone.png")


def test_sixteen_bit_images_are_scaled_to_eight_bit(tmp_path):
    from PIL import Image

    arr = np.full((8, 8), 40000, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "x.png")
    img = load_gray(tmp_path / "x.png")
    assert img.dtype == torch.uint8 and int(img[0, 0, 0]) == 40000 >> 8


def test_sampler_permutes_per_epoch_reproducibly():
    s = EpochShuffleSampler(50, seed=2)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert sorted(e0) == sorted(e1) == list(range(50)) and e0 != e1
    s.set_epoch(0)
    assert list(s) == e0


def test_batches_are_the_same_with_any_number_of_workers(syn_dir, tiny_text_path):
    """What a worker draws depends on the sample alone: 0 or 2 workers give the same batches."""
    from tests.helpers import text_encoder  # noqa: PLC0415

    ds = PairedImageTextDataset(load_table(syn_dir).iloc[:24], train_transform(32), "sentence", seed=4)
    ds.set_epoch(2)
    collate = ImageTextCollator(text_encoder(tiny_text_path).tokenizer, 32)

    def batches(workers):
        loader = DataLoader(
            ds, batch_size=8, sampler=EpochShuffleSampler(len(ds), seed=4), collate_fn=collate, num_workers=workers
        )
        return list(loader)

    inline, workers = batches(0), batches(2)
    assert len(inline) == len(workers) == 3
    for a, b in zip(inline, workers):
        assert a["texts"] == b["texts"] and a["images"].dtype == torch.uint8
        for key in ("images", "jitter", "input_ids", "attention_mask"):
            assert torch.equal(a[key], b[key]), key
    out = augment_on_device(inline[0])
    assert out["images"].dtype == torch.float32 and out["images"].shape == (8, 1, 32, 32) and "jitter" not in out


def test_collate_pads_to_multiples_of_16_where_the_length_allows(tiny_text_path):
    from tests.helpers import text_encoder  # noqa: PLC0415

    tokenizer = text_encoder(tiny_text_path).tokenizer
    samples = [
        (torch.zeros(1, 8, 8, dtype=torch.uint8), (1.0, 1.0), "small left pleural effusion " * k) for k in (1, 9)
    ]
    assert ImageTextCollator(tokenizer, 96)(samples)["input_ids"].shape[1] % 16 == 0
    # GLoRIA's published length, 97, is no multiple of 16: padded to the longest text, cut at 97.
    ids = ImageTextCollator(tokenizer, 97)(samples)["input_ids"]
    assert ids.shape[1] == min(97, max(len(tokenizer(t)["input_ids"]) for *_, t in samples))


def _damaged_copy(src, dst, missing: int, corrupt: int):
    """A copy of the dataset at `src` with the image of train row `missing` deleted and of row
    `corrupt` truncated; returns its train table."""
    import shutil

    shutil.copytree(src, dst)
    table = load_table(dst)
    Path(table["path"][missing]).unlink()
    p = Path(table["path"][corrupt])
    p.write_bytes(p.read_bytes()[:30])
    return table


def test_bad_rows_fail_naming_manifest_and_row(syn_dir, tmp_path):
    table = _damaged_copy(syn_dir, tmp_path / "ds", missing=2, corrupt=5)
    manifest = tmp_path / "ds" / "manifest.parquet"
    with pytest.raises(
        FileNotFoundError,
        match=rf"{manifest}: row {table['manifest_row'][2]} "
        rf"\(id '{table['id'][2]}'\): image .* not found \(1 missing",
    ):
        PairedImageTextDataset(table, train_transform(48), "report")
    present = table.drop(index=2).reset_index(drop=True)
    ds = PairedImageTextDataset(present, train_transform(48), "report")
    with pytest.raises(
        ValueError,
        match=rf"{manifest}: row {table['manifest_row'][5]} \(id '{table['id'][5]}'\): "
        r"image .* could not be decoded",
    ):
        ds[4]


def test_bad_rows_are_counted_skips_with_on_error_skip(syn_dir, tmp_path, tiny_text_path):
    from syncxr.data.paired_dataset import ImageTextCollator
    from syncxr.models.text_encoder import load_tokenizer

    table = _damaged_copy(syn_dir, tmp_path / "ds", missing=2, corrupt=5)
    ds = PairedImageTextDataset(table, train_transform(48), "report", on_error="skip")
    assert ds.skipped == 1 and len(ds) == len(table) - 1
    assert ds[4] == (None, None, 4)  # table row 5, after the missing row 2 was left out
    batch = ImageTextCollator(load_tokenizer(tiny_text_path), 32)([ds[i] for i in range(3, 7)])
    assert batch["images"].shape[0] == 3 and batch["skipped"] == [4] and len(batch["texts"]) == 3
    with pytest.raises(ValueError, match="on_error must be one of"):
        PairedImageTextDataset(table, train_transform(48), "report", on_error="ignore")
