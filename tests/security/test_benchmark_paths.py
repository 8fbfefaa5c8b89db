"""Benchmark split files cannot make a reader open files outside the benchmark root: not by an
absolute path, "..", nor a symbolic link planted in the root; `allow_external_images` lifts it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from syncxr.benchmarks.chestxray14 import read_chestxray14
from syncxr.benchmarks.chexpert import read_chexpert_split
from syncxr.benchmarks.covid_rural import read_covid_rural
from syncxr.benchmarks.covidx import read_covidx
from syncxr.benchmarks.padchest import read_padchest
from syncxr.benchmarks.rsna import read_rsna
from syncxr.benchmarks.siim import read_siim

OUTSIDE = r"outside the benchmark root"


def _png(path, value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


@pytest.fixture
def layout(tmp_path):
    """(benchmark root with one good image, a readable "secret" image outside it)."""
    root, secret = tmp_path / "bench", tmp_path / "private" / "secret.png"
    _png(root / "images" / "good.png")
    _png(secret, 200)
    return root, secret


def _csv(path, rows: dict) -> None:
    pd.DataFrame(rows).to_csv(path, index=False)


def _chexpert(root, image):
    _csv(root / "s.csv", {"Path": ["images/good.png", image], "Edema": [0, 1]})
    return lambda **kw: read_chexpert_split(root, "s.csv", ["Edema"], **kw)


def _chestxray14(root, image):
    _csv(
        root / "s.csv",
        {
            "img_path": ["images/good.png", image],
            "Image Index": ["a", "b"],
            "Finding Label": ["No Finding", "Edema"],
            "edema": [0, 1],
        },
    )
    return lambda **kw: read_chestxray14(root, "s.csv", ["edema"], **kw)


def _padchest(root, image):
    _csv(root / "s.csv", {"ImageID": ["images/good.png", image], "edema": [0, 1]})
    return lambda **kw: read_padchest(root, "s.csv", ["edema"], **kw)


def _rsna(root, image):
    _csv(
        root / "s.csv",
        {"ID": ["a", "b"], "img_path": ["images/good.png", image], "boxes": ["", ""], "classes": ["0", "0"]},
    )
    return lambda **kw: read_rsna(root, "s.csv", **kw)


@pytest.mark.parametrize("reader", [_chexpert, _chestxray14, _padchest, _rsna])
@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_csv_image_paths_that_leave_the_root_are_refused_unless_allowed(layout, reader, how):
    root, secret = layout
    image = {"dotdot": "../private/secret.png", "absolute": str(secret), "symlink": "images/linked.png"}[how]
    (root / "images" / "linked.png").symlink_to(secret)
    read = reader(root, image)
    why = "is a symbolic link .*" if how == "symlink" else "is "
    with pytest.raises(ValueError, match=rf"s.csv: row 1: image .*{why}{OUTSIDE}.*allow_external_images=true"):
        read()
    with pytest.raises(ValueError, match=OUTSIDE):  # a refusal, not a counted skip
        read(on_error="skip")
    split = read(allow_external_images=True)
    assert len(split) == 2 and split.load(1).float().mean() == 200


def test_siim_image_ids_and_masks_that_leave_the_root_are_refused(layout):
    root, secret = layout
    (root / "s.csv").write_text("ImageId, EncodedPixels\ngood, -1\n../../private/secret, -1\n")
    _png(root / "png_images" / "good.png")
    with pytest.raises(ValueError, match=rf"s.csv: row 1: image .*{OUTSIDE}"):
        read_siim(root, "s.csv")
    assert read_siim(root, "s.csv", allow_external_images=True).load(1).float().mean() == 200
    # A mask file linked out of the root.
    (root / "s.csv").write_text("ImageId, EncodedPixels\ngood, -1\n")
    (root / "masks").mkdir()
    (root / "masks" / "good.png").symlink_to(secret)
    with pytest.raises(ValueError, match=rf"s.csv: row 0: mask .*is a symbolic link.*{OUTSIDE}"):
        read_siim(root, "s.csv", mask_dir="masks")


def test_covidx_file_names_and_linked_folders_are_refused(layout):
    root, secret = layout
    _png(root / "test" / "good.png")
    (root / "test.txt").write_text("p1 good.png negative src\np2 ../../private/secret.png positive src\n")
    with pytest.raises(ValueError, match=rf"test.txt: row 1: image .*{OUTSIDE}"):
        read_covidx(root, "test.txt")
    assert read_covidx(root, "test.txt", allow_external_images=True).load(1).float().mean() == 200
    # The whole image folder a symbolic link to elsewhere (a legitimately symlinked subtree needs the option).
    (root / "test.txt").write_text("p2 secret.png positive src\n")
    (root / "val").symlink_to(secret.parent)
    with pytest.raises(ValueError, match=rf"row 0: image .*is a symbolic link.*{OUTSIDE}"):
        read_covidx(root, "test.txt", image_dir="val")
    assert len(read_covidx(root, "test.txt", image_dir="val", allow_external_images=True)) == 1


def test_covid_rural_masks_linked_out_of_the_root_are_refused(layout):
    root, secret = layout
    _png(root / "jpgs" / "a.jpg")
    (root / "pngs_masks").mkdir()
    (root / "pngs_masks" / "a.png").symlink_to(secret)
    (root / "s.csv").write_text("filepath\na.jpg\n")
    with pytest.raises(ValueError, match=rf"s.csv: row 0: mask .*{OUTSIDE}"):
        read_covid_rural(root, "s.csv")
    assert read_covid_rural(root, "s.csv", allow_external_images=True).mask(0, (8, 8)).all()


def test_a_symlinked_root_itself_is_fine(layout, tmp_path):
    root, _ = layout
    (tmp_path / "alias").symlink_to(root)
    _csv(root / "s.csv", {"Path": ["images/good.png"], "Edema": [0]})
    assert len(read_chexpert_split(tmp_path / "alias", "s.csv", ["Edema"])) == 1
