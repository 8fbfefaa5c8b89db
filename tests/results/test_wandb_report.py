"""The W&B side of a sweep report, offline: the Report built from the saved spec (sections, panel
types, metrics, grouping, the filter to the sweep's training runs), publishing it later, and the
swept values a training run carries at the top of its W&B config. No server is contacted."""

import json

import pytest
import wandb
import wandb_workspaces.reports.v2 as wr

from syncxr.results import wandb_report
from syncxr.results.__main__ import main as report_main
from syncxr.results.sweep import write_report
from syncxr.results.wandb_logger import tracker_config
from tests.results.fake_sweep import write_sweep

OFFLINE = {"name": "wandb", "project": "syncxr-test", "entity": None, "mode": "offline"}


class _FakeRun:
    def __init__(self, **kw):
        self.kw, self.id = kw, kw["id"]

    def log(self, data):
        pass

    def finish(self, exit_code=0):
        pass


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(wandb, "init", lambda **kw: _FakeRun(**kw))
    root = write_sweep(
        tmp_path / "sweep-7",
        {"real": 0.3, "syn": 0.6, "mix": 0.8},
        models=("convirt", "gloria"),
        seeds=(0,),
        datasets=("chexpert", "rsna"),
        grounding=("rsna",),
    )
    write_report(root, OFFLINE, n_boot=50)
    return root


def test_the_report_has_a_section_per_study_with_its_panels(sweep):
    spec = json.loads((sweep / wandb_report.SPEC).read_text())
    assert [s["title"].split(":")[0] for s in spec["sections"]] == ["Table 1", "Table 2b"]
    report = wandb_report.build_report(spec, "my-team")
    assert (report.entity, report.project) == ("my-team", "syncxr-test")
    kinds = [type(b).__name__ for b in report.blocks]
    assert kinds == ["H1", "MarkdownBlock", "H2", "MarkdownBlock", "PanelGrid", "H2", "MarkdownBlock", "PanelGrid"]
    assert "syn > real" in report.blocks[1].text  # the claims open the report
    table1 = report.blocks[4]
    runset = table1.runsets[0]
    assert (runset.entity, runset.project) == ("my-team", "syncxr-test")
    assert runset.filters == "Metric(\"Group\") == 'sweep-7' and Metric(\"JobType\") == 'train'"
    bars = [p for p in table1.panels if isinstance(p, wr.BarPlot)]
    # A bar chart per swept axis (data, model) and headline metric (AUC of each seen-disease set).
    assert sorted((p.groupby.name, p.metrics[0].name) for p in bars) == sorted(
        (axis, f"zeroshot_cls/{ds}/auc") for axis in ("model", "data") for ds in ("chexpert", "rsna")
    )
    assert all(p.groupby_aggfunc == "mean" and p.groupby_rangefunc == "stddev" for p in bars)
    (pc,) = [p for p in table1.panels if isinstance(p, wr.ParallelCoordinatesPlot)]
    assert [type(c.metric).__name__ + ":" + c.metric.name for c in pc.columns] == [
        "Config:model",
        "Config:data",
        "SummaryMetric:zeroshot_cls/chexpert/auc",
        "SummaryMetric:zeroshot_cls/rsna/auc",
    ]
    assert [type(p).__name__ for p in table1.panels].count("RunComparer") == 1
    grounding = report.blocks[7]
    assert {p.metrics[0].name for p in grounding.panels if isinstance(p, wr.BarPlot)} == {"zeroshot_grounding/rsna/iou"}


def test_an_offline_report_is_published_later_by_one_command(sweep, monkeypatch, capsys):
    assert "publish it with `python -m syncxr.results" in (sweep / "report.md").read_text()
    saved = []

    class FakeReport:
        url = "https://wandb.example/reports/1"

        def save(self):
            saved.append(self)

    built = []
    monkeypatch.setattr(wandb_report, "build_report", lambda spec, entity: built.append((spec, entity)) or FakeReport())
    monkeypatch.setattr(wandb, "Api", lambda: type("Api", (), {"default_entity": "me"})())
    report_main([str(sweep), "--publish"])
    assert capsys.readouterr().out.strip() == FakeReport.url
    assert len(saved) == 1 and built[0][1] == "me" and built[0][0]["group"] == "sweep-7"
    assert json.loads((sweep / wandb_report.SPEC).read_text())["published_url"] == FakeReport.url
    with pytest.raises(FileNotFoundError, match="--wandb"):
        wandb_report.publish(sweep / "data=mix,model=gloria,seed=0")


def test_online_without_a_reachable_server_keeps_the_spec(sweep, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)  # a dummy: nothing is sent, publish fails first

    def unreachable(sweep_dir):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(wandb_report, "publish", unreachable)
    write_report(sweep, {**OFFLINE, "mode": "online"}, n_boot=50)
    text = (sweep / "report.md").read_text()
    assert "Not published (ConnectionError); the spec is wandb_report.json" in text
    assert "## Table 1" in text


def test_training_runs_carry_their_swept_values_at_the_top(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(
        "- data=syn\n- sampling=longtail\n- generation.entity_ratio=0.5\n- seed=2\n- +trainer.max_steps=3\n"
    )
    resolved = {"data": {"name": "syn", "n": 5}, "model": {"name": "gloria"}, "seed": 2, "optimizer": {"lr": 1e-4}}
    assert tracker_config(resolved, tmp_path) == {
        "data": "syn",
        "model": "gloria",
        "seed": 2,
        "sampling": "longtail",
        "generation.entity_ratio": 0.5,
        "trainer.max_steps": 3,
        "cfg": resolved,
    }
    # Outside a Hydra job dir: the choices every run has.
    plain = {"data": "syn", "model": "gloria", "seed": 2, "cfg": resolved}
    assert tracker_config(resolved, tmp_path / "plain") == plain
