"""The README stays a map (short, with the two commands CI and users run verbatim) and every link in the
documentation, and every docs reference in a code comment, lands on an existing file and heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import REPO

README_MAX_LINES = 200
SETUP = "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e . && "
MAIN_JOB_COMMAND = SETUP + ".venv/bin/python train.py"
TEST_COMMAND = SETUP + ".venv/bin/python -m pytest"

MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`[^`]*`")
# A comment's pointer into the docs: docs/<page>.md or sweeps/README.md, optionally with #anchor.
DOCS_REFERENCE = re.compile(r"(?<![\w/.])((?:docs/[\w-]+|sweeps/README)\.md)(?:#([\w-]+))?")


def _doc_pages() -> list[Path]:
    return [REPO / "README.md", REPO / "sweeps" / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced code blocks."""
    out, fenced = [], False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append((n, line))
    return out


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    for _, line in _prose_lines(path):
        heading = re.match(r"#{1,6} +(.+?) *#*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            seen[slug] = seen.get(slug, -1) + 1
            if seen[slug]:
                seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def _check_target(target: Path, anchor: str | None, where: str) -> str | None:
    if not target.exists():
        return f"{where}: {target.relative_to(REPO)} does not exist"
    if anchor and anchor not in _anchors(target):
        return f"{where}: no heading #{anchor} in {target.relative_to(REPO)}"
    return None


def test_readme_is_a_map():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move long sections to docs/"
    )


def test_readme_keeps_the_two_commands_verbatim():
    lines = (REPO / "README.md").read_text().splitlines()
    assert MAIN_JOB_COMMAND in lines and TEST_COMMAND in lines
    # .ci/run runs the README's test command (quietly installed).
    ci = (REPO / ".ci" / "run").read_text().replace("pip install -q ", "pip install ")
    assert TEST_COMMAND in ci.splitlines()


@pytest.mark.parametrize("page", _doc_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_links_resolve(page):
    broken = []
    for n, line in _prose_lines(page):
        for link in MARKDOWN_LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"[a-z]+:", link):  # http(s), mailto: not checked offline
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            problem = _check_target(target, anchor or None, f"{page.relative_to(REPO)}:{n} ({link})")
            if problem:
                broken.append(problem)
    assert not broken, "\n".join(broken)


def test_docs_references_in_comments_resolve():
    broken, found = [], 0
    for folder in ("src", "conf", "bench", "tests"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix not in (".py", ".yaml") or path == Path(__file__).resolve():
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                for doc, anchor in DOCS_REFERENCE.findall(line):
                    found += 1
                    problem = _check_target(REPO / doc, anchor or None, f"{path.relative_to(REPO)}:{n}")
                    if problem:
                        broken.append(problem)
    assert found, "no docs references found: the pattern no longer matches how comments link the docs"
    assert not broken, "\n".join(broken)
