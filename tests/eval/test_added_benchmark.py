"""Adding a benchmark takes a class, a YAML and a test, nothing else: a tiny benchmark defined here
and configured in a config dir of the test's own (on Hydra's search path) gets its phantom twin
written, is scored by evaluate.py's run function, and lands in its paper table of the sweep report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from syncxr.benchmarks import Benchmark
from syncxr.data.benchmark_split import (
    RowChecks,
    binary_labels,
    finish_split,
    image_path,
    read_csv,
    require_columns,
    split_file_path,
)
from syncxr.eval.evaluation_job import run_evaluation
from syncxr.phantom.benchmarks import write_png
from syncxr.results.sweep import write_report
from tests.helpers import compose_eval


def read_tiny(root, split_csv, classes, on_error="raise", allow_external_images=False):
    """`image` + one 0/1 column per class."""
    root, csv = split_file_path(root, split_csv, "Tiny")
    df = read_csv(csv, "Tiny")
    require_columns(df, ["image", *classes], csv)
    paths = [image_path(root, v, csv, i) for i, v in enumerate(df["image"])]
    return finish_split(
        csv,
        df["image"],
        paths,
        classes,
        binary_labels(df, classes, csv),
        None,
        checks=RowChecks(root, on_error, allow_external_images),
    )


class Tiny(Benchmark):
    name = "tiny"
    title = "Tiny"
    tables = (("table1", 9, None),)  # after the five published Table 1 sets
    subject = ("cardiomegaly", "pleural_effusion")
    reader = staticmethod(read_tiny)

    def write_twin_image(self, spec, out_dir, split, code, i, image, masks, findings):
        write_png(out_dir / split / f"{i}.png", image)
        return {"image": f"{split}/{i}.png", **{k: int(k in findings) for k in self.subject}}


TINY_YAML = {
    "tiny": {
        "_target_": f"{__name__}.Tiny",
        "root": None,
        "twin": {"n_valid": 12, "n_test": 16, "seed": 5, "image_size": 48, "prevalence": 0.5},
        "splits": {"valid": "valid.csv", "test": "test.csv"},
        "classes": ["cardiomegaly", "pleural_effusion"],
        "prompt_names": {"pleural_effusion": "effusion"},
        "options": {},
        "on_error": "raise",
        "allow_external_images": False,
    }
}


@pytest.fixture
def tiny_conf(tmp_path):
    (tmp_path / "conf" / "benchmark").mkdir(parents=True)
    (tmp_path / "conf" / "benchmark" / "tiny.yaml").write_text(yaml.safe_dump(TINY_YAML))
    return [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "benchmark=[all,tiny]", "embedding_cache=null"]


def test_a_benchmark_added_as_a_class_and_a_yaml_is_evaluated_and_reported(
    untrained_run, tmp_path, tiny_conf, cache_dir
):
    cfg = compose_eval(untrained_run, [*tiny_conf, "task=[zeroshot_cls]", "task.zeroshot_cls.datasets=[tiny]"])
    assert cfg.benchmark.chexpert and cfg.benchmark.tiny.twin.n_test == 16  # the shipped ones stay
    job = tmp_path / "sweep" / "data=syn"
    metrics = run_evaluation(cfg, job)
    assert {
        "zeroshot_cls/tiny/auc",
        "zeroshot_cls/tiny/cardiomegaly/auc",
        "zeroshot_cls/tiny/pleural_effusion/f1",
    } <= set(metrics)
    twin = next((cache_dir / "benchmarks").glob(f"tiny-{Tiny(twin=TINY_YAML['tiny']['twin']).twin_spec().hash}"))
    test = np.loadtxt(twin / "test.csv", delimiter=",", skiprows=1, usecols=(1, 2))
    assert (test.sum(0) == 8).all()  # its twin, drawn at its prevalence
    details = json.loads((job / "evaluation.json").read_text())["details"]
    assert details["benchmarks"] == {"tiny": {"title": "Tiny", "tables": [["table1", 9, None]]}}
    assert details["phantom_twins"] == ["tiny"]

    (job / ".hydra").mkdir()
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["data=syn"]))
    (job / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    report = write_report(tmp_path / "sweep", n_boot=10)[1].read_text()
    header = next(line for line in report.splitlines() if line.startswith("| model"))
    assert "Tiny AUC" in header and "Tiny F1" in header  # Table 1, from the benchmark object
    assert "`zeroshot_cls/tiny/auc`" in report


def test_a_task_the_benchmark_does_not_serve_is_an_error_naming_it(untrained_run, tmp_path, tiny_conf):
    cfg = compose_eval(
        untrained_run, [*tiny_conf, "task=[zeroshot_grounding]", "task.zeroshot_grounding.datasets=[tiny]"]
    )
    with pytest.raises(ValueError, match=r"benchmark.tiny \(Tiny\) serves \['classification'\], not grounding"):
        run_evaluation(cfg, tmp_path / "out")
