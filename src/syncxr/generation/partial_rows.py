"""The rows of a partially synthetic dataset, one shard of real rows at a time: a real image with a
new report (`describe_real_images`) or a real report with a new image (`draw_real_reports`).

Each real row gets up to `max_attempts` tries, every try with a new seed; a row that yields no
pair is counted under the reason of its last try and its last answer kept, never silently dropped.
A row whose backend failed (a `BackendFailure`: server down, timeouts) is neither: it is returned
as retryable, without its counts, for a later run to make from its first try.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..backends import NER, ImageToReport, TextToImage
from ..data.image_io import load_image
from ..reports.backend_failure import is_backend_failure
from ..reports.i2r_prompt import split_report


@dataclass
class ShardRows:
    rows: list[dict] = field(default_factory=list)  # the pairs made, in real-row order
    failed: Counter = field(default_factory=Counter)  # reason -> real rows that gave no pair
    rejects: list[dict] = field(default_factory=list)  # per failed row: real_id, reason, last answer
    counters: Counter = field(default_factory=Counter)  # tries (one per finished row and attempt)
    retryable: dict[str, str] = field(default_factory=dict)  # row id -> the backend failure that stopped it
    tries: Counter = field(default_factory=Counter)  # real id -> tries spent (summed into counters at the end)

    def finish(self, key: str, id_prefix: str) -> ShardRows:
        """Counts the tries of the rows that finished (made or failed) under `key`."""
        self.counters[key] += sum(n for rid, n in self.tries.items() if f"{id_prefix}-{rid}" not in self.retryable)
        return self


def row_seed(seed: int, position: int, attempt: int) -> int:
    """Seed of the real row at `position` on try `attempt`: a retry samples anew, a rerun the same."""
    return seed * 10_000_019 + position * 101 + attempt


def link_or_copy(src: Path, dst: Path) -> None:
    """`src` at `dst` without a second copy on disk where the filesystem allows a hard link."""
    dst.unlink(missing_ok=True)  # left by a killed run of the same shard
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""  # None / NaN in a real manifest -> ""


def _entities(value) -> list[dict]:
    return [dict(e) for e in value] if isinstance(value, (list, np.ndarray)) else []  # None / NaN -> []


def _check_count(got: list, expected: int, backend) -> None:
    if len(got) != expected:  # zip would silently pair answers with the wrong rows
        raise ValueError(f"backend {backend.name!r} returned {len(got)} outputs for {expected} inputs")


def _fail(out: ShardRows, row: dict, reason: str, detail) -> None:
    out.failed[reason] += 1
    out.rejects.append({"real_id": row["id"], "reason": reason, "answer": detail})


def _load_real_images(rows: list[dict], out: ShardRows) -> tuple[dict, list[dict]]:
    """The pixels of each readable real image by position, and its rows; an unreadable file is a
    failed row (counted, its error kept), not a crash of the shard."""
    images, pending = {}, []
    for r in rows:
        try:
            images[r["position"]] = load_image(r["path"]).numpy()[0]
            pending.append(r)
        except (OSError, ValueError) as e:
            _fail(out, r, "unreadable_image", str(e))
    return images, pending


def _describe_with_retries(
    out: ShardRows,
    pending: list[dict],
    images: dict,
    describer: ImageToReport,
    seed: int,
    max_attempts: int,
    id_prefix: str,
) -> dict:
    """position -> (sections, seed, attempts) of the rows whose report split into sections, trying
    each row up to `max_attempts` times; a row that never did is failed under its last try's reason
    (after all tries, so the counts stay in row order), one whose backend failed is left retryable."""
    accepted, last = {}, {}
    for attempt in range(max_attempts):
        if not pending:
            break
        seeds = [row_seed(seed, r["position"], attempt) for r in pending]
        extra = {"labels": [list(r["labels"]) for r in pending]} if describer.reads_labels else {}
        answers = describer.describe([images[r["position"]] for r in pending], seeds, **extra)
        _check_count(answers, len(pending), describer)
        still = []
        for r, s, answer in zip(pending, seeds, answers):
            if is_backend_failure(answer):
                out.retryable[f"{id_prefix}-{r['id']}"] = f"i2r:{answer.reason}"
                continue
            out.tries[r["id"]] += 1
            sections = split_report(answer)
            if sections is None:
                last[r["position"]] = ("no_answer" if not _text(answer) else "no_sections", answer)
                still.append(r)
            else:
                accepted[r["position"]] = (sections, s, attempt + 1)
        pending = still
    for r in pending:
        _fail(out, r, *last[r["position"]])
    return accepted


def _described_row(
    r: dict, accepted: tuple, ents: list, describer_name: str, images_dir: Path, id_prefix: str, source: str
) -> dict:
    """The new row of real row `r` with its accepted report; its image is the real file, linked."""
    (findings, impression), s, attempts = accepted
    new_id, suffix = f"{id_prefix}-{r['id']}", Path(r["path"]).suffix
    link_or_copy(Path(r["path"]), images_dir / f"{new_id}{suffix}")  # the real file, byte for byte
    row = {
        "id": new_id,
        "image": f"images/{new_id}{suffix}",
        "findings": findings,
        "impression": impression,
        "entities": ents,
        "source": source,
        "split": r["split"],
        "real_id": r["id"],
        "i2r": describer_name,
        "seed": s,
        "attempts": attempts,
    }
    if "labels" in r:  # ground truth of the (real) image, still true of this row's image
        row["labels"] = list(r["labels"])
    return row


def describe_real_images(
    rows: list[dict],
    describer: ImageToReport,
    ner: NER,
    seed: int,
    max_attempts: int,
    images_dir: Path,
    id_prefix: str,
    source: str,
) -> ShardRows:
    """A new report for each real image. `rows`: real manifest records with `position` (row number in
    the real manifest) and `path` (absolute image path); `describer.describe(images, seeds)` answers
    whole reports (an oracle that `reads_labels` is also given each row's `labels`)."""
    out = ShardRows()
    images, pending = _load_real_images(rows, out)
    accepted = _describe_with_retries(out, pending, images, describer, seed, max_attempts, id_prefix)
    done = [r for r in rows if r["position"] in accepted]
    entities = ner.extract_batch([" ".join(accepted[r["position"]][0]) for r in done])
    for r, ents in zip(done, entities):
        out.rows.append(_described_row(r, accepted[r["position"]], ents, describer.name, images_dir, id_prefix, source))
    return out.finish("i2r_tries", id_prefix)


def _is_image(image) -> bool:
    """A usable 2-D uint8 grayscale image; a constant one (a blanked or failed sample) is not."""
    return (
        isinstance(image, np.ndarray)
        and image.ndim == 2
        and image.dtype == np.uint8
        and image.size > 0
        and image.min() != image.max()
    )


def _verdicts(curator, images: list[np.ndarray]) -> list:
    """Per image (passed, reason) or the curation backend's BackendFailure; all pass uncurated."""
    return curator.check(images) if curator is not None and images else [(True, "")] * len(images)


def _draw_with_retries(
    out: ShardRows, rows: list[dict], t2i: TextToImage, curator, seed: int, max_attempts: int, id_prefix: str
) -> dict:
    """position -> (image, seed, attempts) of the rows whose drawn image is usable (and passed the
    curator, if any), drawing each row up to `max_attempts` times from its IMPRESSION (FINDINGS when
    empty); a row that never gave one is failed under its last try's reason."""
    # A real manifest never has both sections empty (read_dataset checks), so every row has a prompt.
    pending = [(r, _text(r["impression"]) or _text(r["findings"])) for r in rows]
    accepted, last = {}, {}
    for attempt in range(max_attempts):
        if not pending:
            break
        seeds = [row_seed(seed, r["position"], attempt) for r, _ in pending]
        images = t2i.generate([p for _, p in pending], seeds)
        _check_count(images, len(pending), t2i)
        still, drawn = [], []
        for item, s, image in zip(pending, seeds, images):
            if is_backend_failure(image):
                out.retryable[f"{id_prefix}-{item[0]['id']}"] = f"imagegen:{image.reason}"
                continue
            out.tries[item[0]["id"]] += 1
            if _is_image(image):
                drawn.append((item, s, image))
            else:
                last[item[0]["position"]] = "invalid_image"
                still.append(item)
        for (item, s, image), verdict in zip(drawn, _verdicts(curator, [d[2] for d in drawn])):
            if is_backend_failure(verdict):
                out.retryable[f"{id_prefix}-{item[0]['id']}"] = f"curation:{verdict.reason}"
            elif verdict[0]:
                accepted[item[0]["position"]] = (image, s, attempt + 1)
            else:  # regenerated from the same prompt, as SynCXR's curation does (paper §3.2)
                out.counters[f"images_rejected_{verdict[1].split(':')[0]}"] += 1
                last[item[0]["position"]] = "curation_rejected"
                still.append(item)
        pending = still
    for r, prompt in pending:
        _fail(out, r, last[r["position"]], prompt)
    return accepted


def draw_real_reports(
    rows: list[dict],
    t2i: TextToImage,
    seed: int,
    max_attempts: int,
    images_dir: Path,
    id_prefix: str,
    source: str,
    curator=None,
) -> ShardRows:
    """A new image for each real report, drawn by `t2i.generate(prompts, seeds)` from its IMPRESSION
    (its FINDINGS when the IMPRESSION is empty) and, with a `curator` (images.curation.Curator),
    drawn again while curation rejects it. `rows` as for `describe_real_images`."""
    out = ShardRows()
    accepted = _draw_with_retries(out, rows, t2i, curator, seed, max_attempts, id_prefix)
    for r in rows:
        if r["position"] not in accepted:
            continue
        image, s, attempts = accepted[r["position"]]
        new_id = f"{id_prefix}-{r['id']}"
        Image.fromarray(image).save(images_dir / f"{new_id}.png", compress_level=1)
        out.rows.append(
            {
                "id": new_id,
                "image": f"images/{new_id}.png",
                "findings": _text(r["findings"]),
                "impression": _text(r["impression"]),
                "entities": _entities(r.get("entities")),
                "source": source,
                "split": r["split"],
                "real_id": r["id"],
                "imagegen": t2i.name,
                "seed": s,
                "attempts": attempts,
            }
        )
    return out.finish("t2i_tries", id_prefix)
