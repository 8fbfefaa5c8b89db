"""MIMIC-CXR-JPG on disk -> a syncxr dataset directory (manifest.parquet + images/ + dataset.json).

Expected under `root` (the MIMIC-CXR-JPG layout, with the MIMIC-CXR reports extracted beside it):
  mimic-cxr-2.0.0-metadata.csv[.gz]  dicom_id, subject_id, study_id, ViewPosition, ...
  mimic-cxr-2.0.0-split.csv[.gz]     dicom_id, split (train / validate / test)
  files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg
  files/pXX/pSUBJECT/sSTUDY.txt      free-text reports (reports="txt"), or instead a pre-sectioned
                                     CSV (reports=<path>, columns study, findings, impression and
                                     optionally last_paragraph, comparison)

Every image of a selected view is paired with its study's FINDINGS and IMPRESSION and re-encoded
under images/. Images and reports are read only from inside `root`: one that is a symbolic link
to elsewhere (or lies under one) is dropped as `external_*` unless `allow_external_files`. Bad data
never stops ingestion and never enters the dataset: a row is dropped under
the first check it fails (in DROP_REASONS order), counted in dataset.json (`counts.dropped`, with a
few ids per reason in `dropped_examples`) and summarised in the log. A bad *configuration* (root or a
CSV missing, an unknown option) raises at once, naming the file or key.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock
from PIL import Image
from tqdm.auto import tqdm

from .confined_paths import OutsideRootError, RootConfinement
from .dataset_format import INFO, MANIFEST, DatasetBuilder, config_hash, is_complete, write_json_atomic
from .durable import atomic_path
from .mimic_cxr_drops import DROP_REASONS, DropLog  # noqa: F401 - DROP_REASONS: this module's reasons
from .mimic_cxr_files import ReportLookup, csv_reports, find_csv, read_csv, txt_reports

log = logging.getLogger(__name__)

# Bump when the output for the same config changes (parser, resizing), so cached copies are rebuilt.
MIMIC_VERSION = "mimic_cxr-v1"
SOURCE = "mimic_cxr"
METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv"
SPLIT_CSV = "mimic-cxr-2.0.0-split.csv"
SPLITS = {"train": "train", "validate": "val", "test": "test"}
# ViewPosition values of MIMIC-CXR-JPG. Decubitus (LLD/RLD) and axial shots are frontal projections.
FRONTAL_VIEWS = ("PA", "AP", "AP AXIAL", "PA LLD", "AP LLD", "PA RLD", "AP RLD")
OTHER_VIEWS = ("LATERAL", "LL", "XTABLE LATERAL", "LAO", "RAO", "LPO", "SWIMMERS")
IMAGE_SUFFIX = {"jpeg": ".jpg", "png": ".png"}
# Ids become file and directory names: MIMIC's are hex groups joined by "-" and decimal numbers.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
NUMBER = re.compile(r"[0-9]{1,20}")  # ASCII digits only: str.isdigit() also accepts "²" and "٣"
JPEG_QUALITY = 95
# The type phantom and generated datasets store `entities` in: [{name, type}] per row.
ENTITIES_TYPE = pa.list_(pa.struct([("name", pa.string()), ("type", pa.string())]))


@dataclass(frozen=True)
class MimicCxrSpec:
    """What determines a MIMIC-CXR dataset; all but `workers` go into its hash."""

    # Errors name the field first: the builder prefixes them with the config key (`data.real.`).
    root: str | None  # the MIMIC-CXR-JPG directory
    reports: str = "txt"  # "txt": files/pXX/pSUBJECT/sSTUDY.txt; else a sectioned CSV (relative to root)
    views: tuple[str, ...] = ("PA", "AP")  # ViewPosition values kept
    image_size: int | None = 512  # shorter side after resizing (never enlarged); None: as stored
    image_format: str = "jpeg"  # "jpeg" (quality 95; copied as is when not resized) or "png"
    workers: int = 4  # threads decoding and writing images (PIL releases the GIL); output unchanged
    allow_external_files: bool = False  # True: follow symbolic links in root that lead outside it

    def __post_init__(self):
        if not self.root:
            raise ValueError("root is not set: give the MIMIC-CXR-JPG directory (or export MIMIC_CXR_ROOT)")
        views = (self.views,) if isinstance(self.views, str) else tuple(self.views)
        object.__setattr__(self, "views", tuple(str(v).strip().upper() for v in views))
        unknown = [v for v in self.views if v not in FRONTAL_VIEWS + OTHER_VIEWS]
        if not self.views or unknown:
            raise ValueError(
                f"views must name MIMIC ViewPosition values {list(FRONTAL_VIEWS + OTHER_VIEWS)}; got {list(self.views)}"
            )
        if self.image_size is not None and (not isinstance(self.image_size, int) or self.image_size < 1):
            raise ValueError(f"image_size must be a positive int or null, got {self.image_size!r}")
        if self.image_format not in IMAGE_SUFFIX:
            raise ValueError(f"image_format must be one of {sorted(IMAGE_SUFFIX)}, got {self.image_format!r}")
        if not isinstance(self.reports, str) or not self.reports:
            raise ValueError(f"reports must be 'txt' or the path of a sectioned CSV, got {self.reports!r}")
        if self.reports != "txt" and not self.reports.lower().endswith((".csv", ".csv.gz")):
            raise ValueError(f"reports must be 'txt' or the path of a sectioned CSV (*.csv), got {self.reports!r}")

    @property
    def root_path(self) -> Path:
        return Path(self.root).expanduser().resolve()

    @property
    def reports_path(self) -> Path | None:
        """The sectioned CSV, or None for reports="txt"."""
        return None if self.reports == "txt" else self.root_path / Path(self.reports).expanduser()

    def to_dict(self) -> dict:
        """The hashed config: paths as resolved, so "~/mimic" and "/home/me/mimic" are one dataset.
        `allow_external_files` only where set, so the datasets made before it keep their address."""
        return {
            "root": str(self.root_path),
            "reports": str(self.reports_path or "txt"),
            "views": list(self.views),
            "image_size": self.image_size,
            "image_format": self.image_format,
            **({"allow_external_files": True} if self.allow_external_files else {}),
        }

    @property
    def hash(self) -> str:
        return config_hash({"version": MIMIC_VERSION, **self.to_dict()})


def _check_row(
    row, split_of: dict[str, str], seen: set[str], views: tuple[str, ...], report_of: ReportLookup
) -> tuple[str | None, dict]:
    """(drop reason or None, manifest fields) of one metadata row, before its image is read."""
    dicom, subject, study = row.dicom_id.strip(), row.subject_id.strip(), row.study_id.strip()
    view = row.ViewPosition.strip().upper()
    fields = {"id": dicom, "subject_id": subject, "study_id": study, "view": view}
    if not dicom or not NUMBER.fullmatch(subject) or not NUMBER.fullmatch(study):
        return "bad_metadata", fields
    if not SAFE_ID.fullmatch(dicom) or ".." in dicom:
        return "unsafe_id", fields
    if dicom in seen:
        return "duplicate_image", fields
    seen.add(dicom)
    split = split_of.get(dicom)
    if split is None:
        return "not_in_split", fields
    if split not in SPLITS:
        return "unknown_split", fields
    fields["split"] = SPLITS[split]
    if view not in views:
        if not view:
            return "missing_view", fields
        if view not in FRONTAL_VIEWS + OTHER_VIEWS:
            return "unknown_view", fields
        return ("view_not_selected" if view in FRONTAL_VIEWS else "non_frontal_view"), fields
    report = report_of(subject, study)
    if isinstance(report, str):
        return report, fields
    if not report.findings and not report.impression:
        return "empty_report", fields
    fields["findings"], fields["impression"] = report.findings, report.impression
    return None, fields


def _draft_size(size: tuple[int, int], short: int) -> tuple[int, int]:
    """Smallest (w, h) at the image's aspect ratio whose shorter side is `short` (rounded up)."""
    return -(-size[0] * short // min(size)), -(-size[1] * short // min(size))


def convert_image(src: Path, dst: Path, image_size: int | None, image_format: str) -> str | None:
    """Decodes `src` in full (the only real check for a corrupt JPEG) and writes it to `dst`, shrunk
    so its shorter side is `image_size`; returns the drop reason, or None once written."""
    if not src.is_file():
        return "missing_image"
    try:
        with Image.open(src) as im:
            shrink = bool(image_size) and min(im.size) > image_size
            if shrink:
                im.draft("L", _draft_size(im.size, image_size))  # JPEG: decode at a reduced scale, fast
            im = im.convert("L")  # decodes every pixel: a truncated file raises here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return "corrupt_image"
    if shrink and min(im.size) > image_size:
        w, h = im.size
        im = im.resize((round(w * image_size / min(w, h)), round(h * image_size / min(w, h))), Image.Resampling.LANCZOS)
    if image_format == "jpeg" and not shrink and src.suffix.lower() in (".jpg", ".jpeg"):
        shutil.copyfile(src, dst)  # already a JPEG of the wanted size: keep the original bytes
    elif image_format == "jpeg":
        im.save(dst, "JPEG", quality=JPEG_QUALITY)
    else:
        im.save(dst, "PNG")
    return None


def _ordered_map(fn: Callable, items: Iterable, workers: int) -> Iterator[tuple]:
    """(item, fn(item)) in input order, at most 4 x workers in flight: streams any number of rows."""
    if workers <= 1:
        yield from ((it, fn(it)) for it in items)
        return
    with ThreadPoolExecutor(workers) as pool:
        window: deque = deque()
        for it in items:
            window.append((it, pool.submit(fn, it)))
            if len(window) >= 4 * workers:
                head, fut = window.popleft()
                yield head, fut.result()
        while window:
            head, fut = window.popleft()
            yield head, fut.result()


def _write_manifest(path: Path, df: pd.DataFrame) -> None:
    """Parquet with `entities` typed as in other datasets (all-empty lists would be list<null>)."""
    table = pa.Table.from_pandas(df.drop(columns="entities"), preserve_index=False)
    table = table.add_column(
        list(df.columns).index("entities"),
        pa.field("entities", ENTITIES_TYPE),
        pa.array(df["entities"].tolist(), type=ENTITIES_TYPE),
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _read_metadata(meta_path: Path, split_path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """(the metadata rows in subject, study, image order; dicom_id -> split)."""
    meta = read_csv(meta_path, ("dicom_id", "subject_id", "study_id", "ViewPosition"), "metadata CSV")
    splits = read_csv(split_path, ("dicom_id", "split"), "split CSV")
    split_of = dict(zip(splits["dicom_id"].str.strip(), splits["split"].str.strip().str.lower()))
    return meta.sort_values(["subject_id", "study_id", "dicom_id"], kind="stable"), split_of


def build_mimic_cxr(spec: MimicCxrSpec, target: Path, progress: bool = True) -> Path:
    """Ingests MIMIC-CXR-JPG as described by `spec` into directory `target` (atomically)."""
    root = spec.root_path
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: MIMIC-CXR-JPG root directory (root=...) not found")
    meta_path = find_csv(root, METADATA_CSV, "metadata CSV")
    split_path = find_csv(root, SPLIT_CSV, "split CSV")
    report_of = lru_cache(maxsize=64)(
        txt_reports(root, spec.allow_external_files) if spec.reports_path is None else csv_reports(spec.reports_path)
    )  # rows come grouped by study
    meta, split_of = _read_metadata(meta_path, split_path)
    suffix = IMAGE_SUFFIX[spec.image_format]
    drops, seen, rows = DropLog(), set(), []
    source = RootConfinement(root, spec.allow_external_files, what="MIMIC-CXR root")

    with DatasetBuilder(target) as tmp:
        output = RootConfinement(tmp)

        def candidates() -> Iterator[dict]:
            for row in tqdm(
                meta.itertuples(), total=len(meta), desc="mimic_cxr", disable=not progress, mininterval=2.0
            ):
                reason, fields = _check_row(row, split_of, seen, spec.views, report_of)
                if reason:  # an id-less row is named by its line in the CSV (the header is line 1)
                    drops.add(reason, fields["id"] or f"{meta_path.name} line {row.Index + 2}")
                    continue
                fields["image"] = f"images/p{fields['subject_id'][:2]}/{fields['id']}{suffix}"
                output.path(fields["image"]).parent.mkdir(exist_ok=True)
                yield fields

        def convert(fields: dict) -> str | None:
            # The ids were checked (SAFE_ID, NUMBER); the confinements make sure no path leaves its root.
            try:
                src = source.path(
                    f"files/p{fields['subject_id'][:2]}/p{fields['subject_id']}/"
                    f"s{fields['study_id']}/{fields['id']}.jpg"
                )
            except OutsideRootError:
                return "external_image"
            return convert_image(src, output.path(fields["image"]), spec.image_size, spec.image_format)

        for fields, reason in _ordered_map(convert, candidates(), spec.workers):
            if reason:
                drops.add(reason, fields["id"])
            else:
                rows.append(fields)
        if not rows:
            raise ValueError(
                f"{root}: no usable image-report pair among {len(meta)} metadata rows; "
                f"dropped {drops.nonzero_counts()}, e.g. {drops.nonzero_examples()}"
            )
        df = _manifest(rows)
        _write_manifest(tmp / MANIFEST, df)
        _write_info(tmp / INFO, spec, len(meta), df, drops)
    _log_summary(len(meta), len(df), drops, target)
    return target


def _write_info(path: Path, spec: MimicCxrSpec, n_meta: int, df: pd.DataFrame, drops: DropLog) -> None:
    """dataset.json: the config, its hash, and the counts of what was kept and dropped."""
    counts = {
        "metadata_rows": int(n_meta),
        "rows": int(len(df)),
        "splits": {str(k): int(v) for k, v in df["split"].value_counts().items()},
        "views": {str(k): int(v) for k, v in df["view"].value_counts().items()},
        "studies": int(df["study_id"].nunique()),
        "subjects": int(df["subject_id"].nunique()),
        "dropped": drops.counts,
    }
    write_json_atomic(
        path,
        {
            "name": SOURCE,
            "config": spec.to_dict(),
            "hash": spec.hash,
            "generator": MIMIC_VERSION,
            "counts": counts,
            "dropped_examples": drops.nonzero_examples(),
        },
    )


def _manifest(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["entities"] = [[] for _ in range(len(df))]  # filled by the NER later
    df["source"] = SOURCE
    df["subject_id"] = df["subject_id"].astype("int64")
    df["study_id"] = df["study_id"].astype("int64")
    return df[
        ["id", "image", "findings", "impression", "entities", "source", "split", "subject_id", "study_id", "view"]
    ]


def _log_summary(n_meta: int, n_kept: int, drops: DropLog, target: Path) -> None:
    msg = f"mimic_cxr: kept {n_kept} of {n_meta} images in {target}"
    if drops.total:
        log.warning(
            "%s; dropped %d: %s (example ids in %s)",
            msg,
            drops.total,
            ", ".join(f"{k}={v}" for k, v in drops.nonzero_counts().items()),
            target / INFO,
        )
    else:
        log.info(msg)


def ensure_mimic_cxr(spec: MimicCxrSpec, cache_dir: str | Path, progress: bool = True) -> Path:
    """Directory of the MIMIC-CXR dataset of `spec` under `cache_dir`, ingesting it on first use.
    Cached by the hash of the config, not of the files: after changing files on disk, delete it."""
    target = Path(cache_dir) / "datasets" / f"mimic_cxr-{spec.hash}"
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):  # parallel jobs of a sweep ingest once, the others wait
        if not is_complete(target):
            build_mimic_cxr(spec, target, progress)
    return target
