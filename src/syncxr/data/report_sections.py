"""FINDINGS and IMPRESSION of a free-text MIMIC-CXR report, with the fallbacks of the public
MIMIC-CXR section parser (MIT-LCP/mimic-cxr, txt/create_section_files.py), re-implemented here.

A MIMIC report is a title ("FINAL REPORT") and sections opened by an all-caps header at the start of
a line ("EXAMINATION:", "INDICATION:", "COMPARISON:", "FINDINGS:", "IMPRESSION:", ...). Header names
vary ("CONCLUSION:", "FINDINGS AND IMPRESSION:", "PA AND LATERAL VIEWS OF THE CHEST:", typos), so
they are normalised to a few canonical names first. Then:

1. findings = the last non-empty FINDINGS section, impression = the last non-empty IMPRESSION
   section (the last, because an addendum or a corrected read comes after the first one).
   A report with only one of them keeps the other empty: the pair still trains on its text.
2. With neither, impression = the "last paragraph": the paragraphs after the first one of the
   report's final section (text a radiologist wrote below the last header, e.g. below INDICATION);
   for a report without any header, the same, or its only paragraph.
3. Still nothing: impression = the COMPARISON section, where, with no other section, radiologists
   sometimes wrote the whole read. Only if it reads like one (at least 4 words): "None.",
   "___" or "Chest radiograph from ___." there is not a report.
A fallback text that is only a placeholder ("None.", "N/A", "___") does not count.

Everything returned has its whitespace collapsed to single spaces.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A header: at the start of a line, upper case (with the punctuation seen in MIMIC headers), then ":".
_HEADER = re.compile(r"^[ \t]*([A-Z][A-Z ()/,&-]*?)[ \t]*:(?=\s|$)", re.MULTILINE)
# A paragraph break: a line that is empty or holds only spaces (MIMIC indents every line by one).
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_TITLE = re.compile(r"^\s*(FINAL|PRELIMINARY) REPORT[ \t]*$", re.MULTILINE)

# Header spellings seen in MIMIC-CXR -> canonical name (those not listed are matched by rule below).
_SYNONYMS = {
    "comparisons": "comparison",
    "comparison exam": "comparison",
    "comparison film": "comparison",
    "reference exam": "comparison",
    "comparision": "comparison",
    "comparsion": "comparison",
    "clinical history": "history",
    "clinical information": "history",
    "patient history": "history",
    "pfi": "history",
    "reason for examination": "indication",
    "reason for exam": "indication",
    "clinical indication": "indication",
    "exam": "examination",
    "type of examination": "examination",
    "conclusion": "impression",
    "summary": "impression",
    "impresson": "impression",
    "impresion": "impression",
    "impession": "impression",
    "imprssion": "impression",
    "mpression": "impression",
    "finding": "findings",
    "findngs": "findings",
    "findins": "findings",
    "finidngs": "findings",
    "recommendation": "recommendations",
    "recommendation(s)": "recommendations",
    "wetread": "wet read",
}
# A header containing one of these words is that section ("FINDINGS AND IMPRESSION" is the
# conclusion, hence impression first; "ADDENDUM TO FINDINGS" is an addendum, hence before findings).
_MAIN_SECTIONS = ("impression", "addendum", "findings", "history", "comparison")
# A header that names the study itself ("CHEST, PA AND LATERAL:") opens the description of it.
_STUDY_TITLE = re.compile(
    r"chest|portable|pa and lat|lateral and pa|ap and lat|lateral and ap|"
    r"frontal|two views|one view|pa view|ap view|lateral view|upright|ribs"
)
_PLACEHOLDER = {"", "none", "na", "n a", "not applicable", "no"}
_MIN_COMPARISON_WORDS = 4


class Section(NamedTuple):
    name: str  # canonical name ("preamble" before the first header, "full report" with no header)
    text: str  # raw text, whitespace as in the report


class ReportSections(NamedTuple):
    findings: str
    impression: str


def clean(text: str | None) -> str:
    """Whitespace collapsed to single spaces; None (a missing CSV cell) becomes ""."""
    return re.sub(r"\s+", " ", text).strip() if isinstance(text, str) else ""


def normalize_section_name(header: str) -> str:
    """Canonical name of a section header ("CONCLUSION" -> "impression")."""
    name = re.sub(r"\s+", " ", header).strip().lower()
    if name in _SYNONYMS:
        return _SYNONYMS[name]
    for main in _MAIN_SECTIONS:
        if main in name:
            return main
    return "findings" if _STUDY_TITLE.search(name) else name


def split_sections(text: str) -> list[Section]:
    """The sections of a report in order, their headers normalised."""
    text = _TITLE.sub("", text.replace("\r\n", "\n"), count=1)
    headers = list(_HEADER.finditer(text))
    if not headers:
        return [Section("full report", text)]
    sections = [Section("preamble", text[: headers[0].start()])]
    for h, nxt in zip(headers, [*headers[1:], None]):
        sections.append(Section(normalize_section_name(h.group(1)), text[h.end() : nxt.start() if nxt else len(text)]))
    return sections


def last_paragraph(section: Section) -> str:
    """Text below the first paragraph of the final section; all of it for a report without headers."""
    paragraphs = [p for p in _PARAGRAPH_BREAK.split(section.text) if p.strip()]
    if section.name == "full report":
        return clean(" ".join(paragraphs[1:] if len(paragraphs) > 1 else paragraphs))
    return clean(" ".join(paragraphs[1:]))


def _words(text: str) -> list[str]:
    """Words of letters, without MIMIC's de-identification mark "___"."""
    return re.findall(r"[a-z]+", text.lower())


def is_placeholder(text: str) -> bool:
    """Fallback text that says nothing: "None.", "N/A", "___"."""
    return " ".join(_words(text)) in _PLACEHOLDER


def choose_sections(
    findings: str | None, impression: str | None, last_para: str | None = None, comparison: str | None = None
) -> ReportSections:
    """(findings, impression) from the parts of a report: rules 1-3 of the module docstring. Also
    used on pre-sectioned CSVs, whose columns are these four parts."""
    findings, impression = clean(findings), clean(impression)
    if not findings and not impression:
        last_para, comparison = clean(last_para), clean(comparison)
        if not is_placeholder(last_para):
            impression = last_para
        elif not is_placeholder(comparison) and len(_words(comparison)) >= _MIN_COMPARISON_WORDS:
            impression = comparison
    return ReportSections(findings, impression)


def _last(sections: list[Section], name: str) -> str:
    for s in reversed(sections):
        if s.name == name and clean(s.text):
            return clean(s.text)
    return ""


def parse_report(text: str) -> ReportSections:
    """(findings, impression) of a free-text report; both "" when it has no usable text."""
    sections = split_sections(text)
    return choose_sections(
        _last(sections, "findings"),
        _last(sections, "impression"),
        last_paragraph(sections[-1]),
        _last(sections, "comparison"),
    )
