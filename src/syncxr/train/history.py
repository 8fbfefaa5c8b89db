"""history.jsonl: one JSON record per logged step, appended (not fsynced: a crash can tear the last
line) and cut back, at resume, to the steps of the checkpoint the run resumes from."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)


def _record(line: str):
    """The record a line holds, or None when it is not one (torn, garbled or without a step)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        return None
    return record


def recover_history(path: Path, up_to_step: float = math.inf) -> list[dict]:
    """The records of `path` up to step `up_to_step`. A last line that is not a record (an append torn
    by a crash) and records past `up_to_step` (their steps are trained again) are dropped, with a
    warning saying which; a bad line before the last cannot come from a torn append: ValueError
    naming the file and line."""
    if not path.is_file():
        return []
    # Bytes a crash tore inside a multi-byte character decode to U+FFFD: that line is then not JSON.
    text = path.read_bytes().decode("utf-8", "replace")
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    records = []
    for n, (i, line) in enumerate(lines):
        record = _record(line)
        if record is not None:
            records.append(record)
        elif n == len(lines) - 1:
            log.warning("%s: line %d is not a whole record (an append torn by a crash); dropped: %.80r", path, i, line)
        else:
            raise ValueError(
                f"{path}: line {i} is not a JSON record with a positive integer 'step': {line[:80]!r} "
                "(only the last line can be torn by a crash; remove the line or the file to go on)"
            )
    kept = [r for r in records if r["step"] <= up_to_step]
    if len(kept) < len(records):
        dropped = [r["step"] for r in records if r["step"] > up_to_step]
        log.warning(
            "%s: %d record(s) past the checkpoint's step %s dropped (steps %s-%s; trained again)",
            path,
            len(dropped),
            up_to_step,
            min(dropped),
            max(dropped),
        )
    return kept
