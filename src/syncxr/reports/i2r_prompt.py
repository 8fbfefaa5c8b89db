"""What image-to-report models are asked, and how their answer is split into FINDINGS and IMPRESSION.

Every image-to-report backend answers `describe(images, seeds) -> list[str | None]` with a whole
report; `split_report` turns one answer into its two sections, or None when it has neither. It is
stricter than the MIMIC parser (`data.report_sections.parse_report`), which takes a report without
headers as its IMPRESSION: an answer without headed sections is a failed try, not a report. It is
also looser about the headings models write (mid-line, any case, markdown).
"""

from __future__ import annotations

import re

from ..data.report_sections import clean

REPORT_PROMPT = (
    "You are an expert radiologist. Write the radiology report of this chest X-ray with exactly "
    "two sections, headed 'FINDINGS:' and 'IMPRESSION:'. Describe only what the image shows."
)

# "FINDINGS:", "Impression:", "**FINDINGS:**", "**Findings**:" anywhere, or a markdown "## Findings" line.
_HEADING = re.compile(
    r"\b(FINDINGS|IMPRESSION)\b[ \t]*\**[ \t]*:|^[ \t]*#+[ \t]*(FINDINGS|IMPRESSION)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


def _clean(body: str) -> str:
    return clean(body.strip(" \t\n*#"))  # markdown around a heading is not report text


def split_report(text: str | None) -> tuple[str, str] | None:
    """(findings, impression) of a report answer; a missing section is "". None when the answer has
    no headed section with text (gibberish, a refusal, an empty answer)."""
    if not text:
        return None
    heads = list(_HEADING.finditer(text))
    sections = {"findings": "", "impression": ""}
    for head, nxt in zip(heads, heads[1:] + [None]):
        name = (head.group(1) or head.group(2)).lower()
        body = _clean(text[head.end() : nxt.start() if nxt else len(text)])
        if body and not sections[name]:  # a repeated heading does not overwrite the first section
            sections[name] = body
    if not (sections["findings"] or sections["impression"]):
        return None
    return sections["findings"], sections["impression"]
