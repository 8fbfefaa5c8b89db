"""MAVL's RSNA split files as published (HieuPhan33/CVPR2024_MAVL data/rsna/val.csv): the columns of a
pandas merge, `ID_x, img_path, boxes_x, classes_x, ID_y, boxes_y, classes_y`, the `_y` side empty and
negatives holding the literal text `nan` in `boxes_x`."""

from __future__ import annotations

import numpy as np
import pytest

from syncxr.benchmarks.rsna import read_rsna
from syncxr.data.image_io import write_dicom

HEADER = "ID_x,img_path,boxes_x,classes_x,ID_y,boxes_y,classes_y\n"
# Rows in MAVL's shape: a positive with its box written twice (as MAVL's file does), two negatives.
ROWS = [
    "7729,img/a.dcm,132.0;459.0;268.0;202.0|132.0;459.0;268.0;202.0,1,,,\n",
    "26035,img/b.dcm,nan,0,,,\n",
    "8668,img/c.dcm,nan,0,,,\n",
]


def _root(tmp_path, rows, header=HEADER):
    (tmp_path / "img").mkdir(exist_ok=True)
    for name in "abc":
        write_dicom(tmp_path / "img" / f"{name}.dcm", np.full((32, 32), 100, np.uint8))
    (tmp_path / "val.csv").write_text(header + "".join(rows))
    return tmp_path


def test_mavl_val_csv_reads_its_x_side(tmp_path):
    split = read_rsna(_root(tmp_path, ROWS), "val.csv")
    assert split.ids == ["7729", "26035", "8668"]
    assert split.labels[:, 0].tolist() == [1, 0, 0]
    assert [len(r.boxes) for r in split.regions] == [2, 0, 0]  # "nan": no boxes
    assert split.regions[0].boxes[0] == (132.0, 459.0, 268.0, 202.0)
    mask = split.mask(0, (1024, 1024))
    assert mask[459:661, 132:400].all() and mask.sum() == 268 * 202


def test_a_merge_whose_both_sides_hold_data_is_refused_naming_the_columns(tmp_path):
    rows = [ROWS[0], "26035,img/b.dcm,nan,0,26035,10;10;5;5,1\n", ROWS[2]]
    with pytest.raises(ValueError, match=r"val.csv: columns 'ID_x' and 'ID_y' both hold data"):
        read_rsna(_root(tmp_path, rows), "val.csv")
    rows = [ROWS[0], "26035,img/b.dcm,nan,0,,10;10;5;5,\n", ROWS[2]]
    with pytest.raises(ValueError, match=r"val.csv: columns 'boxes_x' and 'boxes_y' both hold data"):
        read_rsna(_root(tmp_path, rows), "val.csv")


def test_the_y_side_is_read_when_the_x_side_is_empty(tmp_path):
    header = "ID_x,img_path,boxes_x,classes_x,ID_y,boxes_y,classes_y\n"
    rows = [",img/a.dcm,,,7,1.0;2.0;3.0;4.0,1\n", ",img/b.dcm,,,8,,0\n"]
    split = read_rsna(_root(tmp_path, rows, header), "val.csv")
    assert split.ids == ["7", "8"] and split.labels[:, 0].tolist() == [1, 0]


def test_the_plain_layout_still_refuses_nonsense_boxes(tmp_path):
    rows = ["a,img/a.dcm,nonsense,1\n"]
    with pytest.raises(ValueError, match=r"val.csv: row 0: box 'nonsense' is not x;y;w;h"):
        read_rsna(_root(tmp_path, rows, "ID,img_path,boxes,classes\n"), "val.csv")
