"""MIMIC-CXR's metadata CSVs and its reports on disk: the readers build_mimic_cxr pairs images with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .confined_paths import OutsideRootError, RootConfinement
from .report_sections import ReportSections, choose_sections, parse_report

ReportLookup = Callable[[str, str], "ReportSections | str"]  # (subject, study) -> sections | reason


def find_csv(root: Path, name: str, what: str) -> Path:
    """`root/name`, or its gzipped copy as PhysioNet ships it."""
    for path in (root / name, root / f"{name}.gz"):
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{root / name}: MIMIC-CXR-JPG {what} not found (nor {name}.gz); is root the MIMIC-CXR-JPG directory?"
    )


def read_csv(path: Path, required: tuple[str, ...], what: str, optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """The named columns of a CSV as strings ("" for empty cells); a clear error if any is missing."""
    wanted = set(required) | set(optional)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=lambda c: c in wanted)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path}: cannot read the {what}: {e}") from e
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: the {what} lacks column(s) {missing}")
    return df


def subject_dir(root: Path, subject: str) -> Path:
    return root / "files" / f"p{subject[:2]}" / f"p{subject}"


def txt_reports(root: Path, allow_external: bool = False) -> ReportLookup:
    """Reports parsed from files/pXX/pSUBJECT/sSTUDY.txt (inside root, unless `allow_external`)."""
    inside = RootConfinement(root, allow_external, what="MIMIC-CXR root")

    def lookup(subject: str, study: str) -> ReportSections | str:
        try:
            text = inside.path(subject_dir(root, subject) / f"s{study}.txt").read_text(encoding="utf-8")
        except OutsideRootError:
            return "external_report"
        except FileNotFoundError:
            return "missing_report"
        except (OSError, UnicodeDecodeError):
            return "unreadable_report"
        return parse_report(text)

    return lookup


def csv_reports(path: Path) -> ReportLookup:
    """Reports from a pre-sectioned CSV (as made by MIT-LCP's create_section_files.py), with the
    same fallbacks as the free-text parser."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sectioned report CSV (reports=...) not found")
    df = read_csv(
        path, ("study", "findings", "impression"), "sectioned report CSV", optional=("last_paragraph", "comparison")
    )
    last = df["last_paragraph"] if "last_paragraph" in df else [""] * len(df)
    comparison = df["comparison"] if "comparison" in df else [""] * len(df)
    by_study = {
        s.strip().lstrip("s"): choose_sections(f, i, lp, c)
        for s, f, i, lp, c in zip(df["study"], df["findings"], df["impression"], last, comparison)
    }
    return lambda subject, study: by_study.get(study, "missing_report")
