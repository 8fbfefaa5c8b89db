"""The paper-mode fidelity table (docs/paper_mode_settings.md): every paper-mode setting has a source
comment, the committed table is the one the config files give, and the comment reader finds a
key's source on its line, above it or on the mapping that holds it."""

from __future__ import annotations

from syncxr.results import paper_fidelity as pf


def test_every_paper_mode_setting_has_a_source_comment():
    rows = pf.settings()
    assert len(rows) > 150  # every file of PAPER_FILES was read
    assert {r.file for r in rows} == {f for f, _, _ in pf.PAPER_FILES}
    missing = pf.unsourced(rows)
    assert not missing, (
        "paper-mode keys without a `# paper §...` / `# official ...` / `# paper silent: ...` comment:\n"
        + "\n".join(missing)
    )


def test_the_committed_table_is_the_generated_one():
    assert pf.TABLE.read_text() == pf.render(pf.settings()), (
        "docs/paper_mode_settings.md is stale: python -m syncxr.results.paper_fidelity"
    )


def test_the_table_shows_the_composed_values_of_each_model():
    rows = {(r.file, r.key): r for r in pf.settings()}
    gloria = rows[("pretraining/gloria.yaml", "trainer.early_stopping_patience")]
    assert gloria.values == {"gloria": "10"} and "early_stopping_callback" in gloria.source
    # A preset shared by both models shows each one's composed value where pre-training overrides it.
    pool = rows[("text_encoder/bioclinicalbert.yaml", "text_encoder.pool")]
    assert pool.values == {"convirt": "mean", "gloria": "max"}
    assert rows[("recipe/paper.yaml", "defaults: override /ner: rate_ner")].source.startswith("paper §3.2")


YAML = """\
# @package _global_
defaults:
  - /scheduler@scheduler: plateau  # official marshuang80/gloria gloria/builder.py
  - _self_
  # paper silent: a block comment above the entry
  - /llm: template
a:
  b: 1  # paper §4.1: on its line
  # official owner/repo file.py: the line above
  c: "x # not a comment"
  d: 2  # a remark, not a source
e:  # paper A.2: the mapping's source covers its keys
  f: {g: 1, h: 2}
  i: [1, 2]  # paper silent: its own
j: 3
"""


def test_comments_on_the_line_above_and_on_the_mapping_are_read(tmp_path):
    (tmp_path / "x.yaml").write_text(YAML)
    got = {k: s for k, _, s in pf.file_settings("x.yaml", "pkg", conf=tmp_path)}
    assert got["defaults: /scheduler@scheduler: plateau"] == "official marshuang80/gloria gloria/builder.py"
    assert got["defaults: /llm: template"] == "paper silent: a block comment above the entry"
    assert got["pkg.a.b"] == "paper §4.1: on its line"
    assert got["pkg.a.c"] == "official owner/repo file.py: the line above"  # the '#' in the string is no comment
    assert got["pkg.a.d"] == ""  # a comment that names no source is none
    assert got["pkg.e.f.g"] == got["pkg.e.f.h"] == "paper A.2: the mapping's source covers its keys"
    assert got["pkg.e.i"] == "paper silent: its own"
    assert got["pkg.j"] == ""
    lines = {k: n for k, n, _ in pf.file_settings("x.yaml", "pkg", conf=tmp_path)}
    assert lines["pkg.a.d"] == 11 and lines["pkg.j"] == 15
