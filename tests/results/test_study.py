"""One report over the whole study (issue 21, item 15): several fake sweeps (Table 1-3, Table 4a and
Figure 3) into one report.md with every table in the paper's order and every sweep's claims, and one
W&B Report spec over their runs, published only with --publish (the W&B report API mocked)."""

import json
from types import SimpleNamespace

import pytest
import wandb
import yaml

from syncxr.results import wandb_report
from syncxr.results.__main__ import main as report_main
from tests.results.fake_sweep import write_sweep


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "multirun"
    main = write_sweep(
        root / "main", {"real": 0.3, "syn": 0.6, "mix": 0.8}, datasets=("chexpert", "rsna"), grounding=("rsna",)
    )
    sampling = write_sweep(root / "sampling", {"balanced": 0.8, "longtail": 0.3}, axis="sampling")
    ratio = write_sweep(root / "ratio", {"0.25": 0.3, "0.5": 0.5, "1.0": 0.7}, axis="generation.entity_ratio")
    return [main, sampling, ratio]


@pytest.fixture
def no_server(monkeypatch):
    """Fails the test if anything builds or publishes a W&B Report."""

    def refuse(*a, **kw):
        raise AssertionError("W&B publishing attempted without --publish")

    monkeypatch.setattr(wandb_report, "build_report", refuse)
    monkeypatch.setattr(wandb_report, "publish", refuse)


def test_the_study_report_holds_every_table_and_claim_without_publishing(study, tmp_path, no_server, capsys):
    out = tmp_path / "study"
    report_main([*map(str, study), "--out", str(out), "--n-boot", "50"])
    text = (out / "report.md").read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Table 1: zero-shot classification, seen diseases (main)",
        "## Table 1: zero-shot classification, seen diseases (ratio)",
        "## Table 2b: zero-shot grounding (main)",
        "## Table 4a: balanced vs. long-tailed entity sampling (zero-shot, seen diseases) (sampling)",
        "## Figure 3: entity ratio (ratio)",
        "## The paper's claims",
    ]
    assert "![generation_entity_ratio](ratio/generation_entity_ratio.png)" in text
    assert (out / "ratio" / "generation_entity_ratio.png").is_file()
    claims = text[text.index("## The paper's claims") :]
    assert [line for line in claims.splitlines() if line.startswith("### ")] == [
        "### main",
        "### sampling",
        "### ratio",
    ]
    for expected in (
        "- convirt, zero-shot, seen diseases, mean AUC over CheXpert, RSNA: syn > real by +",
        "- convirt, zero-shot grounding, mean IoU over RSNA: mix > real by +",
        "- convirt, data=syn, zero-shot, seen diseases, mean AUC over CheXpert: sampling=balanced > sampling=longtail",
        "- convirt, data=syn, zero-shot, seen diseases, mean AUC over CheXpert: trend over entity_ratio 0.25, 0.5, 1:",
    ):
        assert any(line.startswith(expected) for line in claims.splitlines()), expected
    spec = json.loads((out / wandb_report.SPEC).read_text())
    assert [(s["title"].split(":")[0], s["group"]) for s in spec["sections"]] == [
        ("Table 1", "main"),
        ("Table 1", "ratio"),
        ("Table 2b", "main"),
        ("Table 4a", "sampling"),
        ("Figure 3", "ratio"),
    ]
    assert "published_url" not in spec and "--publish" in capsys.readouterr().out


def test_a_study_file_and_publish(study, tmp_path, monkeypatch):
    out = tmp_path / "from_file"
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump({"sweeps": [str(d) for d in study], "out": str(out)}))
    saved, built, real_build = [], [], wandb_report.build_report

    class FakeReport:
        url = "https://wandb.example/report"

        def save(self):
            saved.append(self)

    monkeypatch.setattr(wandb, "Api", lambda: SimpleNamespace(default_entity="team"))
    monkeypatch.setattr(wandb_report, "build_report", lambda spec, entity: built.append(entity) or FakeReport())
    report_main([str(study_file), "--n-boot", "20", "--publish"])
    assert built == ["team"] and len(saved) == 1  # one Report for the whole study, saved once
    spec = json.loads((out / wandb_report.SPEC).read_text())
    assert spec["published_url"] == FakeReport.url and spec["title"] == "SynCXR study from_file"
    # The Report of the spec: each section's panels over its own sweep's training runs.
    report = real_build(spec, "team")
    grids = [b for b in report.blocks if type(b).__name__ == "PanelGrid"]
    assert [g.runsets[0].name for g in grids] == ["main", "ratio", "main", "sampling", "ratio"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("out: x\n")
    with pytest.raises(ValueError, match="sweeps:"):
        report_main([str(bad)])
    with pytest.raises(ValueError, match="distinct dir names; given twice: main"):
        report_main([str(study[0]), str(study[0]), "--out", str(tmp_path / "twice")])
