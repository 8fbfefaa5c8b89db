"""COVIDx CXR-2: space-separated, no header: `patient_id filename class source`; images in <split>/.
Twin: consolidation together with edema is "COVID"."""

from __future__ import annotations

from pathlib import Path

from ..data.benchmark_split import RowChecks, Split, finish_split, split_file_path
from ..phantom.benchmarks import exact_draw, write_png
from .base import Benchmark

COVIDX_CLASSES = {"positive": 1, "negative": 0, "COVID-19": 1, "normal": 0, "pneumonia": 0}


def read_covidx(
    root,
    split_txt: str,
    classes: list[str] = ("covid",),
    on_error: str = "raise",
    image_dir: str | None = None,
    allow_external_images: bool = False,
) -> Split:
    """COVIDx CXR-2: space-separated, no header: `patient_id filename class source`, class
    `positive` or `negative` (older releases: `COVID-19`, `normal`, `pneumonia`). Images live in a
    folder named like the split file (`train.txt` -> `train/`) unless `image_dir` says otherwise."""
    if len(classes) != 1:
        raise ValueError(f"COVIDx has one class (COVID-19), got {list(classes)}")
    root, txt = split_file_path(root, split_txt, "COVIDx")
    folder = root / (image_dir if image_dir is not None else Path(split_txt).stem)
    ids, paths, labels = [], [], []
    for i, line in enumerate(txt.read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ValueError(
                f"{txt}: row {i}: expected 4 space-separated fields "
                f"`patient_id filename class source`, got {len(parts)}: {line!r}"
            )
        pid, filename, cls, _source = parts
        if cls not in COVIDX_CLASSES:
            raise ValueError(f"{txt}: row {i}: unknown class {cls!r}; expected one of {sorted(COVIDX_CLASSES)}")
        ids.append(f"{pid}/{filename}")
        paths.append(folder / filename)
        labels.append(COVIDX_CLASSES[cls])
    if not paths:
        raise ValueError(f"{txt}: no rows")
    return finish_split(txt, ids, paths, classes, labels, None, checks=RowChecks(root, on_error, allow_external_images))


class COVIDx(Benchmark):
    name = "covidx"
    title = "COVIDx"
    tables = (("table3a", 2, None),)
    subject = ("consolidation", "edema")  # both together: "COVID"
    twin_splits = {"train": "train.txt", "valid": "val.txt", "test": "test.txt"}
    reader = staticmethod(read_covidx)

    def draw_twin_subject(self, spec, rng, labels, add):
        covid = exact_draw(rng, len(labels), spec.prevalence)
        for i in range(len(labels)):
            if covid[i]:
                labels[i] |= set(self.subject)

    def write_twin_image(self, spec, out_dir, split, code, i, image, masks, findings):
        filename = f"phantom-{code}-{i:05d}.png"
        write_png(out_dir / Path(self.twin_splits[split]).stem / filename, image)
        covid = set(self.subject) <= findings
        return f"P{code}{i:05d} {filename} {'positive' if covid else 'negative'} phantom"

    def write_twin_split(self, path, rows):
        path.write_text("".join(f"{x}\n" for x in rows))
