"""Bad input files fail naming the file and what is wrong (or, where asked, are counted skips), never
with a bare library error from deep inside: header-only benchmark split files, compressed DICOMs no
plugin decodes, report corpora that are empty or not UTF-8."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from syncxr.benchmarks.chestxray14 import ChestXray14
from syncxr.benchmarks.chexpert import CheXpert, read_chexpert_split
from syncxr.benchmarks.covid_rural import COVIDRural
from syncxr.benchmarks.padchest import PadChest
from syncxr.benchmarks.rsna import RSNA
from syncxr.benchmarks.siim import SIIM
from syncxr.data.image_io import load_image
from syncxr.data.transforms import eval_transform
from syncxr.entities.vocabulary import read_report_corpus
from syncxr.eval.embeddings import SplitImages
from tests.helpers import write_undecodable_dicom

HEADERS = {
    CheXpert: ("Path,Edema\n", ["Edema"]),
    PadChest: ("ImageID,edema\n", ["edema"]),
    ChestXray14: ("img_path,Image Index,Finding Label,edema\n", ["edema"]),
    RSNA: ("ID,img_path,boxes,classes\n", ["pneumonia"]),
    SIIM: ("ImageId, EncodedPixels\n", ["pneumothorax"]),
    COVIDRural: ("filepath\n", ["covid"]),
}


@pytest.mark.parametrize("benchmark", list(HEADERS), ids=lambda b: b.name)
def test_a_header_only_split_file_is_an_error_naming_it(tmp_path, benchmark):
    header, classes = HEADERS[benchmark]
    (tmp_path / "png_images").mkdir()  # SIIM's image folder
    (tmp_path / "test.csv").write_text(header)
    with pytest.raises(ValueError, match=rf"{tmp_path}/test.csv: the .* split file has no rows"):
        benchmark.reader(tmp_path, "test.csv", classes, on_error="skip")


def test_a_dicom_no_plugin_decodes_names_its_path_or_is_a_logged_skip(tmp_path, caplog):
    write_undecodable_dicom(tmp_path / "compressed.dcm")
    with pytest.raises(ValueError, match=r"image .*compressed.dcm could not be decoded as DICOM"):
        load_image(tmp_path / "compressed.dcm")
    Image.fromarray(np.full((8, 8), 50, np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "test.csv").write_text("Path,Edema\ngood.png,0\ncompressed.dcm,1\n")
    split = read_chexpert_split(tmp_path, "test.csv", ["Edema"])
    with pytest.raises(ValueError, match=r"test.csv: row 1: image .*compressed.dcm could not be decoded"):
        SplitImages(split, eval_transform(8))[1]
    with caplog.at_level(logging.WARNING):
        assert SplitImages(split, eval_transform(8), skip_bad=True)[0][1] is True
        image, ok = SplitImages(split, eval_transform(8), skip_bad=True)[1]
    assert ok is False and image.shape == (1, 8, 8)
    assert f"test.csv: row 1: image {tmp_path}/compressed.dcm could not be decoded" in caplog.text


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", r"report corpus is empty \(no header, no rows\)"),
        ("report\nKeine Ergüsse.\n".encode("latin-1"), r"report corpus is not UTF-8 text .* save it as UTF-8"),
        (b"report\n", r"report corpus has no report in column 'report' \(0 rows"),
        (b'report\n""\n"  "\n', r"report corpus has no report in column 'report' \(2 rows, all empty\)"),
    ],
)
def test_a_report_corpus_file_that_is_empty_or_not_utf8_names_the_file(tmp_path, content, problem):
    (tmp_path / "reports.csv").write_bytes(content)
    with pytest.raises(ValueError, match=rf"{tmp_path}/reports.csv: {problem}"):
        read_report_corpus(tmp_path / "reports.csv", "report")
