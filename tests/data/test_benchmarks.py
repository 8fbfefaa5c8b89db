"""Benchmark readers on phantom twins and hand-made files: formats, round trips and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from syncxr.benchmarks.chestxray14 import CHESTXRAY14_OF, ChestXray14, read_chestxray14
from syncxr.benchmarks.chexpert import CheXpert, read_chexpert_split
from syncxr.benchmarks.covid_rural import COVIDRural, read_covid_rural
from syncxr.benchmarks.covidx import COVIDx, read_covidx
from syncxr.benchmarks.padchest import PadChest, read_padchest
from syncxr.benchmarks.rsna import RSNA, parse_boxes, read_rsna
from syncxr.benchmarks.siim import SIIM, read_siim
from syncxr.data.benchmark_split import Boxes
from syncxr.data.image_io import load_dicom, load_image, write_dicom
from syncxr.data.rle import decode_rles, rle_decode, rle_encode

SMALL = dict(n_train=6, n_valid=6, n_test=12, image_size=48)


@pytest.fixture(scope="module")
def twins(cache_dir):
    return {
        cls.name: cls(twin=SMALL).root_dir(cache_dir, progress=False)
        for cls in (ChestXray14, PadChest, RSNA, SIIM, COVIDx, COVIDRural)
    }


# --------------------------------------------------------------------------- RLE
def test_rle_hand_made_case_is_column_major():
    # 3 x 3 mask: pixels (row 0, col 0), (row 1, col 0), (row 2, col 1)
    m = np.zeros((3, 3), bool)
    m[0, 0] = m[1, 0] = m[2, 1] = True
    # column-major numbering: (0,0)=0 (1,0)=1 (2,1)=5 -> runs [0, 2) and [5, 6)
    assert rle_encode(m, "relative") == "0 2 3 1"  # second start counted from the end of the first run
    assert rle_encode(m, "absolute") == "1 2 6 1"  # 1-based pixel numbers
    assert (rle_decode("0 2 3 1", (3, 3), "relative") == m).all()
    assert (rle_decode("1 2 6 1", (3, 3), "absolute") == m).all()
    assert rle_encode(np.zeros((4, 5), bool)) == "-1"
    assert not rle_decode("-1", (4, 5)).any() and rle_decode("-1", (4, 5)).shape == (4, 5)
    # a non-square case: H=2, W=3; run of 3 from pixel 1 covers (1,0), (0,1), (1,1)
    expect = np.array([[0, 1, 0], [1, 1, 0]], bool)
    assert (rle_decode("1 3", (2, 3), "relative") == expect).all()
    # several rows of one image are united
    assert (decode_rles(["0 1", "4 1"], (2, 3)) == np.array([[1, 0, 1], [0, 0, 0]], bool)).all()


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_rle_round_trip(mode):
    rng = np.random.default_rng(0)
    for shape in ((7, 5), (16, 16), (1, 9)):
        for p in (0.0, 0.1, 0.6, 1.0):
            m = rng.random(shape) < p
            assert (rle_decode(rle_encode(m, mode), shape, mode) == m).all()


def test_rle_rejects_garbage():
    with pytest.raises(ValueError, match="odd number"):
        rle_decode("1 2 3", (4, 4))
    with pytest.raises(ValueError, match="past the 2x2 image"):
        rle_decode("0 5", (2, 2))
    with pytest.raises(ValueError, match="integers"):
        rle_decode("a b", (2, 2))


# --------------------------------------------------------------------------- boxes, DICOM, 16 bit
def test_boxes_parse_and_scale_from_the_1024_frame(tmp_path):
    boxes = parse_boxes("10;20;30;40|100;100;50;50", tmp_path / "x.csv", 0)
    assert boxes == ((10, 20, 30, 40), (100, 100, 50, 50))
    assert parse_boxes("", tmp_path / "x.csv", 0) == () and parse_boxes(float("nan"), tmp_path, 0) == ()
    m = Boxes(boxes, (1024, 1024)).mask((128, 128))  # scale 1/8
    # box 1: x 1.25..5 -> cols 1..4, y 2.5..7.5 -> rows 2..7; box 2: 12.5..18.75 -> 12..18 both ways
    assert m[2:8, 1:5].all() and m[12:19, 12:19].all() and m.sum() == 4 * 6 + 7 * 7
    with pytest.raises(ValueError, match=r"x.csv: row 3: box '1;2;3' is not x;y;w;h"):
        parse_boxes("1;2;3", tmp_path / "x.csv", 3)


def test_dicom_round_trip_8_and_16_bit(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    write_dicom(tmp_path / "a.dcm", a)
    assert (load_dicom(tmp_path / "a.dcm")[0].numpy() == a).all()
    write_dicom(tmp_path / "b.dcm", a.astype(np.uint16) * 257)
    assert (load_image(tmp_path / "b.dcm")[0].numpy() == a).all()  # 16 bit scaled to 8


def test_16_bit_png_is_scaled_to_8_bit(tmp_path):
    a = np.arange(256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(a * 257).save(tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    assert (load_image(tmp_path / "x.png")[0].numpy() == a).all()


# --------------------------------------------------------------------------- twins through the readers
def test_chestxray14_twin(twins):
    root = twins["chestxray14"]
    df = pd.read_csv(root / "test.csv")
    assert list(df.columns[:3]) == ["img_path", "Image Index", "Finding Label"]
    s = read_chestxray14(root, "test.csv", ["atelectasis", "effusion", "pneumothorax"])
    assert len(s) == 12 and s.labels.shape == (12, 3)
    names = [set(v.split("|")) for v in df["Finding Label"]]
    assert [int("Effusion" in n) for n in names] == list(s.labels[:, 1])
    assert CHESTXRAY14_OF["pleural_effusion"] == ("Effusion",)
    assert s.load(0).shape == (1, 48, 48)


def test_padchest_twin_reads_16_bit_pngs_by_column(twins):
    root = twins["padchest"]
    df = pd.read_csv(root / "test.csv")
    s = read_padchest(root, "test.csv", ["pneumothorax", "alveolar pattern"])
    assert s.paths[0] == root / df.iloc[0, 0]
    with Image.open(s.paths[0]) as im:
        assert im.mode.startswith("I")
    img = s.load(0)
    assert img.dtype.is_floating_point is False and 20 < float(img.float().mean()) < 235
    assert s.labels[:, 0].sum() >= 1  # rare findings still have a positive (exact counts)
    assert (s.labels[:, 1] == df["consolidation"]).all()  # alveolar pattern is the consolidation


def test_rsna_twin_boxes_and_dicoms(twins):
    root = twins["rsna"]
    s = read_rsna(root, "test.csv", ["pneumonia"])
    df = pd.read_csv(root / "test.csv", keep_default_na=False)
    assert list(df.columns) == ["ID", "img_path", "boxes", "classes"]
    assert s.paths[0].suffix == ".dcm"
    pos = np.flatnonzero(s.labels[:, 0])
    assert len(pos) and all(df["boxes"][i] == "" for i in np.flatnonzero(s.labels[:, 0] == 0))
    for i in pos:
        img = s.load(i)
        m = s.mask(i, tuple(img.shape[-2:]))
        assert 0 < m.sum() < m.size / 2
        # a 1024-frame coordinate divided by 1024/48 lands inside the image
        assert all(0 <= v <= 1024 for b in s.regions[i].boxes for v in b[:2])


def test_siim_twin_rle_matches_its_mask_pngs(twins):
    root = twins["siim"]
    assert (root / "test.csv").read_text().startswith("ImageId, EncodedPixels\n")  # Kaggle's header
    rle = read_siim(root, "test.csv")
    png = read_siim(root, "test.csv", mask_dir="png_masks")
    assert rle.ids == png.ids and (rle.labels == png.labels).all() and rle.labels.sum() >= 1
    for i in range(len(rle)):
        shape = tuple(rle.load(i).shape[-2:])
        assert (rle.mask(i, shape) == png.mask(i, shape)).all()


def test_siim_several_rows_per_image_and_nested_images(tmp_path):
    (tmp_path / "dicom-images-train" / "s1" / "r1").mkdir(parents=True)
    write_dicom(tmp_path / "dicom-images-train" / "s1" / "r1" / "1.2.3.dcm", np.zeros((4, 4), np.uint8))
    write_dicom(tmp_path / "dicom-images-train" / "1.2.4.dcm", np.zeros((4, 4), np.uint8))
    (tmp_path / "train-rle.csv").write_text("ImageId, EncodedPixels\n1.2.3, 0 2\n1.2.3, 3 1\n1.2.4, -1\n")
    s = read_siim(tmp_path, "train-rle.csv", image_dir="dicom-images-train", image_ext=".dcm")
    assert s.ids == ["1.2.3", "1.2.4"] and list(s.labels[:, 0]) == [1, 0] and s.rows == [0, 2]
    expect = np.zeros((4, 4), bool)
    expect[0, 0] = expect[1, 0] = True  # run 0..2
    expect[3, 0] = True  # each row is a mask of its own, counted from pixel 0: pixel 3 -> (3, 0)
    assert (s.mask(0, (4, 4)) == expect).all() and not s.mask(1, (4, 4)).any()


def test_siim_layout_options_are_checked(twins):
    """benchmark.siim.options are SIIM's file layout: a bad RLE convention or an unknown key is refused,
    the latter naming the config section."""
    with pytest.raises(ValueError, match="SIIM rle must be one of"):
        read_siim(twins["siim"], "test.csv", rle="zigzag")
    with pytest.raises(ValueError, match=r"benchmark.siim.options: .*unexpected keyword argument 'image_folder'"):
        SIIM(options={"image_folder": "png_images"}).read_split(twins["siim"], "test", ["pneumothorax"])


def test_covidx_header_less_file(twins, tmp_path):
    root = twins["covidx"]
    first = (root / "test.txt").read_text().splitlines()[0].split()
    assert len(first) == 4 and first[2] in ("positive", "negative")  # no header line
    s = read_covidx(root, "test.txt")
    assert s.paths[0] == root / "test" / first[1] and s.labels[0, 0] == (first[2] == "positive")
    assert 0 < s.labels.sum() < len(s)
    v = read_covidx(root, "val.txt")
    assert v.paths[0].parent == root / "val"
    (tmp_path / "test.txt").write_text("p1 a.png positive src\np2 b.png negative\n")
    with pytest.raises(ValueError, match=r"test.txt: row 1: expected 4 space-separated fields"):
        read_covidx(tmp_path, "test.txt")
    (tmp_path / "test.txt").write_text("p1 a.png maybe src\n")
    with pytest.raises(ValueError, match=r"test.txt: row 0: unknown class 'maybe'"):
        read_covidx(tmp_path, "test.txt")


def test_covid_rural_twin(twins):
    root = twins["covid_rural"]
    s = read_covid_rural(root, "test.csv")
    assert s.paths[0].parent.name == "jpgs" and s.paths[0].suffix == ".jpg"
    assert (s.labels == 1).all()
    m = s.mask(0, tuple(s.load(0).shape[-2:]))
    assert 0 < m.mean() < 0.6


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_file_and_row(twins, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.csv: RSNA split file not found"):
        read_rsna(twins["rsna"], "nope.csv")
    pd.DataFrame({"ID": ["a"], "img_path": ["a.dcm"], "boxes": [""]}).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(ValueError, match=r"r.csv: missing column\(s\) \['classes'\]"):
        read_rsna(tmp_path, "r.csv")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['no such class'\]"):
        read_padchest(twins["padchest"], "test.csv", ["no such class"])
    # a missing image: an error naming split file and row, or a counted skip
    df = pd.read_csv(twins["chestxray14"] / "test.csv")
    df.loc[3, "img_path"] = "images/missing.png"
    df.to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "images").symlink_to(twins["chestxray14"] / "images")  # a subtree elsewhere: allowed below
    with pytest.raises(FileNotFoundError, match=r"test.csv: row 3: image .*missing.png not found"):
        read_chestxray14(tmp_path, "test.csv", ["edema"], allow_external_images=True)
    s = read_chestxray14(tmp_path, "test.csv", ["edema"], on_error="skip", allow_external_images=True)
    assert len(s) == 11 and s.skipped == 1 and s.skipped_rows == [3]
    # a corrupt image: decoding names the image and the row
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.dcm").write_bytes(b"not a dicom at all")
    (tmp_path / "bad" / "y.png").write_bytes(b"\x89PNG broken")
    pd.DataFrame({"ID": ["x"], "img_path": ["bad/x.dcm"], "boxes": [""], "classes": ["0"]}).to_csv(
        tmp_path / "rsna.csv", index=False
    )
    with pytest.raises(ValueError, match=r"rsna.csv: row 0: image .*x.dcm could not be decoded"):
        read_rsna(tmp_path, "rsna.csv").load(0)
    pd.DataFrame({"Path": ["bad/y.png", "bad/y.png"], "Edema": [0, 2]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(ValueError, match=r"c.csv: row 1 has a label other than 0/1"):
        read_chexpert_split(tmp_path, "c.csv", ["Edema"])
    pd.DataFrame({"Path": ["bad/y.png"], "Edema": [1]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(ValueError, match=r"c.csv: row 0: image .*y.png could not be decoded"):
        read_chexpert_split(tmp_path, "c.csv", ["Edema"]).load(0)
    with pytest.raises(ValueError, match=r"benchmark.chexpert.options: .*unexpected keyword argument 'box_frame'"):
        CheXpert(root=str(tmp_path), options={"box_frame": 1}).read_split(tmp_path, "test", ["Edema"])
    with pytest.raises(ValueError, match="on_error"):
        CheXpert(root=str(tmp_path), splits={"test": "c.csv"}, on_error="ignore").read_split(
            tmp_path, "test", ["Edema"]
        )
