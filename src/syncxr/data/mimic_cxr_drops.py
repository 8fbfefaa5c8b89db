"""Why a MIMIC-CXR metadata row is dropped at ingestion, and the counts of drops that
dataset.json and the log report (`counts.dropped`, a few ids per reason in `dropped_examples`)."""

from __future__ import annotations

DROP_REASONS = (
    "bad_metadata",  # dicom_id empty, or subject_id / study_id not a number
    "unsafe_id",  # dicom_id is not a plain file name (a path, "..", characters outside [A-Za-z0-9._-])
    "duplicate_image",  # dicom_id listed twice in the metadata
    "not_in_split",  # dicom_id absent from the split CSV
    "unknown_split",  # split not train / validate / test
    "missing_view",  # ViewPosition empty
    "unknown_view",  # ViewPosition not a MIMIC view name
    "non_frontal_view",  # lateral or oblique
    "view_not_selected",  # frontal, but not in `views`
    "external_report",  # the report file is a symbolic link (or under one) leading outside root
    "missing_report",  # no report file / no row in the sectioned CSV
    "unreadable_report",  # report file not readable as UTF-8 text
    "empty_report",  # neither findings nor impression, even after the parser's fallbacks
    "external_image",  # the JPEG is a symbolic link (or under one) leading outside root
    "missing_image",  # no JPEG at files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg
    "corrupt_image",  # the JPEG does not decode (truncated, not an image)
)
N_EXAMPLES = 5  # ids kept per drop reason in dataset.json


class DropLog:
    """Counts of dropped rows per reason, with the first few ids of each."""

    def __init__(self):
        self.counts = dict.fromkeys(DROP_REASONS, 0)
        self.examples: dict[str, list[str]] = {r: [] for r in DROP_REASONS}

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < N_EXAMPLES:
            self.examples[reason].append(example)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def nonzero_counts(self) -> dict[str, int]:
        return {k: v for k, v in self.counts.items() if v}

    def nonzero_examples(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.examples.items() if v}
