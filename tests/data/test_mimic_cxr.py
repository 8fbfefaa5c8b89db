"""MIMIC-CXR-JPG ingestion on a MIMIC-shaped tree of phantom images, with one bad row per drop reason."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from syncxr.data import mimic_cxr
from syncxr.data.dataset_format import INFO, MANIFEST, read_dataset
from syncxr.data.mimic_cxr import DROP_REASONS, MimicCxrSpec, build_mimic_cxr
from syncxr.data.mixing import load_table
from syncxr.dataset_dirs import build_dataset_dir


def _wrap(text: str) -> str:
    return "\n ".join(textwrap.wrap(text, 60))  # MIMIC lines: wrapped, each indented by a space


def report_txt(findings: str = "", impression: str = "", body: str = "") -> str:
    """A report laid out like MIMIC-CXR's sSTUDY.txt files."""
    text = (
        "                                 FINAL REPORT\n"
        " EXAMINATION:  CHEST (PA AND LAT)\n \n"
        " INDICATION:  ___ year old woman with cough  // eval for pneumonia\n \n"
        " TECHNIQUE:  Chest PA and lateral\n \n"
        " COMPARISON:  ___\n \n"
    )
    if findings:
        text += f" FINDINGS: \n \n {_wrap(findings)}\n \n"
    if impression:
        text += f" IMPRESSION: \n \n {_wrap(impression)}\n"
    return text + body


class Tree:
    """A MIMIC-CXR-JPG root under construction, and what ingesting it must give."""

    def __init__(self, root: Path, phantom: pd.DataFrame, phantom_dir: Path):
        self.root, self.phantom, self.phantom_dir = root, phantom, phantom_dir
        self.meta, self.split, self.sectioned = [], [], {}
        self.expected = {}  # dicom id -> (findings, impression, split) of rows that must be kept
        self.dropped = {}  # reason -> dicom id planted for it
        self.used = 0

    def image(self, subject: str, study: str, dicom: str, crop: tuple | None = None) -> Path:
        src = self.phantom_dir / self.phantom["image"].iloc[self.used % len(self.phantom)]
        self.used += 1
        path = self.root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(src) as im:
            (im.crop(crop) if crop else im).convert("L").save(path, "JPEG", quality=95)
        return path

    def report(self, subject: str, study: str, text: str | bytes) -> None:
        path = self.root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    def row(self, subject: str, study: str, dicom: str, view: str, split: str | None = "train") -> None:
        self.meta.append(
            {
                "dicom_id": dicom,
                "subject_id": subject,
                "study_id": study,
                "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                "ViewPosition": view,
                "Rows": 64,
                "Columns": 64,
                "StudyDate": 21800506,
            }
        )
        if split is not None:
            self.split.append({"dicom_id": dicom, "study_id": study, "subject_id": subject, "split": split})

    def write_csvs(self) -> None:
        pd.DataFrame(self.meta).to_csv(self.root / "mimic-cxr-2.0.0-metadata.csv", index=False)
        pd.DataFrame(self.split).to_csv(self.root / "mimic-cxr-2.0.0-split.csv", index=False)
        pd.DataFrame([{"study": f"s{k}", **v} for k, v in self.sectioned.items()]).to_csv(
            self.root / "mimic_cxr_sectioned.csv", index=False
        )


@pytest.fixture
def tree(tmp_path, real_dir) -> Tree:
    df, _ = read_dataset(real_dir)
    df = df[(df["defect"] == "none") & (df["findings"] != "") & (df["impression"] != "")].reset_index()
    t = Tree(tmp_path / "mimic-cxr-jpg", df, real_dir)
    t.root.mkdir()
    txt = lambda i: (df["findings"][i], df["impression"][i])  # noqa: E731

    def good(subject, study, dicom, view, split, findings, impression, sectioned, crop=None):
        t.row(subject, study, dicom, view, split)
        t.image(subject, study, dicom, crop)
        t.expected[dicom] = (findings, impression, {"validate": "val"}.get(split, split))
        t.sectioned[study] = sectioned

    f0, i0 = txt(0)
    # A study with a frontal and a lateral image: one report, the lateral dropped.
    t.report("10000032", "50414267", report_txt(f0, i0))
    good(
        "10000032",
        "50414267",
        "02aa804e-bde0afdd",
        "PA",
        "train",
        f0,
        i0,
        {"findings": f0, "impression": i0, "last_paragraph": "", "comparison": "___"},
    )
    t.row("10000032", "50414267", "174413ec-4ec4c1f7", "LATERAL")
    t.image("10000032", "50414267", "174413ec-4ec4c1f7")
    t.dropped["non_frontal_view"] = "174413ec-4ec4c1f7"
    # Same study listed twice in the metadata: the second copy is dropped, the first kept.
    t.meta.append(dict(t.meta[0]))
    t.dropped["duplicate_image"] = "02aa804e-bde0afdd"
    # A landscape AP image in the validation split, stored with its shorter side = image_size.
    f1, i1 = txt(1)
    t.report("11000011", "51000001", report_txt(f1, i1))
    good(
        "11000011",
        "51000001",
        "aa000001-ap-landscape",
        "AP",
        "validate",
        f1,
        i1,
        {"findings": f1, "impression": i1, "last_paragraph": "", "comparison": ""},
        crop=(0, 8, 64, 56),
    )
    f2, i2 = txt(2)
    t.report("12000012", "52000001", report_txt(f2, i2))
    good(
        "12000012",
        "52000001",
        "bb000001-test",
        "PA",
        "test",
        f2,
        i2,
        {"findings": f2, "impression": i2, "last_paragraph": "", "comparison": ""},
    )
    # Only FINDINGS: kept, impression empty.
    f3, _ = txt(3)
    t.report("12000012", "52000002", report_txt(findings=f3))
    good(
        "12000012",
        "52000002",
        "bb000002-findings-only",
        "PA",
        "train",
        f3,
        "",
        {"findings": f3, "impression": "", "last_paragraph": "", "comparison": ""},
    )
    # No FINDINGS/IMPRESSION headers: the paragraph below the last header is the impression.
    _, i4 = txt(4)
    t.report("13000013", "53000001", report_txt(body=f" \n {_wrap(i4)}\n"))
    good(
        "13000013",
        "53000001",
        "cc000001-last-paragraph",
        "AP",
        "train",
        "",
        i4,
        {"findings": "", "impression": "", "last_paragraph": i4, "comparison": "___"},
    )

    # One bad row per reason, each otherwise valid (a report and an image where it matters).
    def bad(reason, dicom, subject, study, view="PA", split="train", report=True, image=True):
        t.row(subject, study, dicom, view, split)
        if report:
            f, i = txt(5 + len(t.dropped))
            t.report(subject, study, report_txt(f, i))
            t.sectioned[study] = {"findings": f, "impression": i, "last_paragraph": "", "comparison": ""}
        if image:
            t.image(subject, study, dicom)
        t.dropped[reason] = dicom

    bad("bad_metadata", "dd000001-bad-subject", "x1400001", "54000001")
    bad("not_in_split", "dd000002-no-split", "14000002", "54000002", split=None)
    bad("unknown_split", "dd000003-holdout", "14000003", "54000003", split="holdout")
    bad("missing_view", "dd000004-empty-view", "14000004", "54000004", view="")
    bad("unknown_view", "dd000005-odd-view", "14000005", "54000005", view="OBLIQUE")
    bad("view_not_selected", "dd000006-ap-axial", "14000006", "54000006", view="AP AXIAL")
    bad("missing_report", "dd000007-no-report", "14000007", "54000007", report=False)
    # Not UTF-8; it has no row in the sectioned CSV, where it is a missing report instead.
    bad("unreadable_report", "dd000008-binary-report", "14000008", "54000008", report=False)
    t.report("14000008", "54000008", b"\xff\xfe IMPRESSION: \x80\x81 garbage\n")
    bad("empty_report", "dd000009-empty-report", "14000009", "54000009", report=False)
    t.report(
        "14000009",
        "54000009",
        " FINAL REPORT\n EXAMINATION:  CHEST\n \n INDICATION:  Cough.\n"
        " \n COMPARISON:  None.\n \n FINDINGS:\n \n IMPRESSION:\n",
    )
    t.sectioned["54000009"] = {"findings": "", "impression": "", "last_paragraph": "", "comparison": "None."}
    # A dicom_id that climbs out of its folder: read from root/files/, written beside the dataset.
    bad("unsafe_id", "../../../escaped", "14000012", "54000012", image=False)
    t.image("14000012", "54000012", "escaped-source")
    (t.root / "files/p14/p14000012/s54000012/escaped-source.jpg").rename(t.root / "files/escaped.jpg")
    bad("missing_image", "dd000010-no-image", "14000010", "54000010", image=False)
    bad("corrupt_image", "dd000011-truncated", "14000011", "54000011")
    jpg = t.root / "files/p14/p14000011/s54000011/dd000011-truncated.jpg"
    jpg.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])
    # Symbolic links to files outside the root (a readable image and report elsewhere): never read.
    outside = tmp_path / "outside"
    bad("external_image", "dd000013-linked-image", "14000013", "54000013")
    jpg = t.root / "files/p14/p14000013/s54000013/dd000013-linked-image.jpg"
    outside.mkdir()
    jpg.rename(outside / "image.jpg")
    jpg.symlink_to(outside / "image.jpg")
    bad("external_report", "dd000014-linked-report", "14000014", "54000014")
    del t.sectioned["54000014"]  # with the sectioned CSV: a missing report
    txt = t.root / "files/p14/p14000014/s54000014.txt"
    txt.rename(outside / "report.txt")
    txt.symlink_to(outside / "report.txt")
    assert sorted(t.dropped) == sorted(DROP_REASONS)  # the tree plants every reason
    t.write_csvs()
    return t


def _pairs(df: pd.DataFrame) -> dict:
    return {r.id: (r.findings, r.impression, r.split) for r in df.itertuples()}


def test_ingestion_keeps_good_pairs_and_counts_every_bad_row(tree, tmp_path, real_dir, caplog):
    spec = MimicCxrSpec(root=str(tree.root), image_size=32, image_format="png", workers=2)
    with caplog.at_level(logging.WARNING):
        out = build_mimic_cxr(spec, tmp_path / "out", progress=False)
    df, info = read_dataset(out)

    assert _pairs(df) == tree.expected
    assert not set(df["id"]) & (set(tree.dropped.values()) - {"02aa804e-bde0afdd"})
    assert list(df["id"]).count("02aa804e-bde0afdd") == 1
    assert info["counts"]["dropped"] == dict.fromkeys(DROP_REASONS, 1)
    assert info["dropped_examples"] == {reason: [dicom] for reason, dicom in tree.dropped.items()}
    assert info["counts"]["rows"] == 5 and info["counts"]["metadata_rows"] == len(tree.meta)
    assert info["counts"]["splits"] == {"train": 3, "val": 1, "test": 1}
    assert info["hash"] == spec.hash and info["config"]["root"] == str(tree.root.resolve())
    assert "dropped 16" in caplog.text and "external_image=1" in caplog.text
    assert "corrupt_image=1" in caplog.text and "unsafe_id=1" in caplog.text
    # Nothing was written outside the dataset (the old code wrote ../../../escaped.png beside it).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mimic-cxr-jpg", "out", "outside"]

    row = df.set_index("id").loc["bb000001-test"]
    assert (row["source"], row["subject_id"], row["study_id"], row["view"]) == ("mimic_cxr", 12000012, 52000001, "PA")
    assert row["image"] == "images/p12/bb000001-test.png" and list(row["entities"]) == []
    for r in df.itertuples():
        with Image.open(out / r.image) as im:
            assert im.format == "PNG" and im.mode == "L" and min(im.size) == 32
    with Image.open(out / df.set_index("id").loc["aa000001-ap-landscape", "image"]) as im:
        assert im.size == (43, 32)  # 64x48 source: shorter side to 32, aspect kept
    # `entities` is typed like a phantom corpus's, so datasets concatenate cleanly.
    assert (
        pq.read_schema(out / MANIFEST).field("entities").type
        == pq.read_schema(real_dir / MANIFEST).field("entities").type
    )
    assert not (out / "images").joinpath("p10", "174413ec-4ec4c1f7.png").exists()


S, T = "10000032", "50414267"


@pytest.mark.parametrize(
    "dicom, subject, study, reason",
    [
        ("../x", S, T, "unsafe_id"),
        ("/etc/passwd", S, T, "unsafe_id"),
        ("a/b", S, T, "unsafe_id"),
        ("..", S, T, "unsafe_id"),
        (".hidden", S, T, "unsafe_id"),
        ("a\x00b", S, T, "unsafe_id"),
        ("a..b", S, T, "unsafe_id"),
        ("ok-id", "１０000032", T, "bad_metadata"),  # fullwidth digits: isdigit() is True
        ("ok-id", S, "5041426²", "bad_metadata"),
        ("ok-id", "10/../0", T, "bad_metadata"),
    ],
)
def test_ids_that_are_not_plain_names_are_dropped(dicom, subject, study, reason):
    row = next(
        pd.DataFrame([{"dicom_id": dicom, "subject_id": subject, "study_id": study, "ViewPosition": "PA"}]).itertuples()
    )
    got, _ = mimic_cxr._check_row(
        row, {dicom: "train"}, set(), ("PA",), lambda *a: pytest.fail("an unsafe row reached the report lookup")
    )
    assert got == reason


def test_sectioned_csv_gives_the_same_pairs(tree, tmp_path):
    # PhysioNet ships the CSVs gzipped: those are found too.
    for name in ("mimic-cxr-2.0.0-metadata.csv", "mimic-cxr-2.0.0-split.csv"):
        with open(tree.root / name, "rb") as src, gzip.open(tree.root / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        (tree.root / name).unlink()
    txt = build_mimic_cxr(
        MimicCxrSpec(root=str(tree.root), image_size=None, workers=0), tmp_path / "txt", progress=False
    )
    csv = build_mimic_cxr(
        MimicCxrSpec(root=str(tree.root), reports="mimic_cxr_sectioned.csv", image_size=None, workers=0),
        tmp_path / "csv",
        progress=False,
    )
    (df_txt, info_txt), (df_csv, info_csv) = read_dataset(txt), read_dataset(csv)
    assert _pairs(df_csv) == _pairs(df_txt) == tree.expected
    expected = dict.fromkeys(DROP_REASONS, 1)
    assert info_txt["counts"]["dropped"] == expected
    assert info_csv["counts"]["dropped"] == {
        **expected,
        "missing_report": 3,
        "unreadable_report": 0,
        "external_report": 0,
    }
    # Not resized and already JPEG: the original bytes are kept.
    src = tree.root / "files/p12/p12000012/s52000001/bb000001-test.jpg"
    assert (txt / "images/p12/bb000001-test.jpg").read_bytes() == src.read_bytes()


def test_builds_through_the_dataset_registry_and_reuses_the_cache(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    spec = {
        "builder": "mimic_cxr",
        "root": str(tree.root),
        "reports": "txt",
        "views": ["PA", "AP"],
        "image_size": 48,
        "image_format": "jpeg",
        "workers": 2,
    }
    first = build_dataset_dir(spec, cache, "data.real")
    assert first.parent == cache / "datasets" and first.name.startswith("mimic_cxr-")
    table = load_table(first, "train")
    assert set(table["id"]) == {k for k, v in tree.expected.items() if v[2] == "train"}
    assert all(Path(p).is_file() for p in table["path"])

    def no_rebuild(*a, **k):
        raise AssertionError("the cached dataset was rebuilt")

    monkeypatch.setattr(mimic_cxr, "build_mimic_cxr", no_rebuild)
    assert build_dataset_dir(dict(spec, workers=1), cache, "data.real") == first  # workers: not hashed
    assert build_dataset_dir(dict(spec, root=str(tree.root) + "/."), cache, "data.real") == first
    with pytest.raises(AssertionError, match="rebuilt"):  # another image size is another dataset
        build_dataset_dir(dict(spec, image_size=32), cache, "data.real")
    assert json.loads((first / INFO).read_text())["config"]["image_size"] == 48


def test_bad_config_raises_naming_the_key_or_file(tree, tmp_path):
    cache = tmp_path / "cache"

    def build(**kw):
        return build_dataset_dir({"builder": "mimic_cxr", "root": str(tree.root), **kw}, cache, "data.real")

    with pytest.raises(FileNotFoundError, match="nowhere.*root directory"):
        build(root=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"data\.real\.root is not set"):
        build(root=None)
    with pytest.raises(ValueError, match=r"data\.real\.reports must be 'txt'"):
        build(reports="json")
    with pytest.raises(FileNotFoundError, match="sectioned.csv.*not found"):
        build(reports="sectioned.csv")
    with pytest.raises(ValueError, match=r"data\.real\.views"):
        build(views=["FRONT"])
    with pytest.raises(ValueError, match="allowed keys"):
        build(path="/x")
    meta = tree.root / "mimic-cxr-2.0.0-metadata.csv"
    pd.read_csv(meta).drop(columns="ViewPosition").to_csv(meta, index=False)
    with pytest.raises(ValueError, match=r"metadata.csv: the metadata CSV lacks column\(s\) \['ViewPosition'\]"):
        build()
    meta.unlink()
    with pytest.raises(FileNotFoundError, match=r"2\.0\.0-metadata\.csv: MIMIC-CXR-JPG metadata CSV not found"):
        build()
    assert not list((cache / "datasets").glob("mimic_cxr-*/"))  # nothing half-built left behind


def test_a_root_with_no_usable_pair_is_an_error_not_an_empty_dataset(tree, tmp_path):
    shutil.rmtree(tree.root / "files")
    with pytest.raises(ValueError, match="no usable image-report pair.*missing_report"):
        build_mimic_cxr(MimicCxrSpec(root=str(tree.root)), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_symlinks_out_of_the_root_are_followed_only_when_allowed(tree, tmp_path):
    spec = MimicCxrSpec(root=str(tree.root), image_size=None, workers=0, allow_external_files=True)
    df, info = read_dataset(build_mimic_cxr(spec, tmp_path / "out", progress=False))
    assert {"dd000013-linked-image", "dd000014-linked-report"} <= set(df["id"])
    assert info["counts"]["dropped"]["external_image"] == info["counts"]["dropped"]["external_report"] == 0
    # Another dataset; without the option the address is the one datasets made before it had.
    default = MimicCxrSpec(root=str(tree.root), image_size=None)
    assert spec.hash != default.hash and "allow_external_files" not in default.to_dict()
