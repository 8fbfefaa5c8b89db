"""The report's generated-datasets section (issue 21, item 4): each SynCXR dataset a sweep trained
on, found by its generation hash as train.py finds it, with its drop rate and mean attempts."""

import json

import pandas as pd
import yaml
from omegaconf import OmegaConf

from syncxr.generation.generation_job import generated_dir, generation_config
from syncxr.results.sweep import write_report
from tests.helpers import compose_train
from tests.results.fake_sweep import write_sweep


def _resolved(tmp_path, overrides):
    cfg = compose_train([f"paths.cache_dir={tmp_path / 'cache'}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def test_report_shows_each_generated_datasets_drop_rate_and_attempts(tmp_path):
    sweep = write_sweep(tmp_path / "s", {"0.5": 0.6, "1.0": 0.7}, axis="generation.entity_ratio")
    made = {}
    for ratio, planned, dropped, attempts in (("0.5", 400, 6, [2, 3, 4]), ("1.0", 400, 0, [2, 2, 2])):
        config = _resolved(tmp_path, [f"generation.entity_ratio={ratio}"])
        d = generated_dir(generation_config(config["data"]["syn"]["generation"]), tmp_path / "cache")
        d.mkdir(parents=True)
        counts = {"rows": planned - dropped, "planned": planned, "dropped": dropped}
        info = {"counts": counts, "config": config["generation"]}
        if ratio == "0.5":  # measured figures: the LLM's first answers, a learned NER and generator
            info["attempts"] = {"first_attempt_exact_rate": 0.9015}
            info["backend_quality"] = {
                "llm": {},
                "ner": {"span_f1": 0.9971},
                "imagegen": {"auc_guided": {"macro": 0.6441, "edema": 0.9}, "auc_unguided": {"macro": 0.6053}},
            }
        (d / "dataset.json").write_text(json.dumps(info))
        pd.DataFrame({"report_attempts": attempts, "image_attempts": [1, 1, 2]}).to_parquet(d / "manifest.parquet")
        made[ratio] = d
        for job in sweep.glob(f"generation.entity_ratio={ratio},*"):
            (job / "resolved_config.yaml").write_text(yaml.safe_dump(config))
    text = write_report(sweep, n_boot=20)[1].read_text()
    section = text[text.index("## Generated datasets") :]
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| syncxr-")}
    assert set(rows) == {d.name for d in made.values()}
    half = [c.strip() for c in rows[made["0.5"].name].strip("|").split("|")]
    # dataset, jobs, llm, imagegen, rows, planned, dropped, first answers exact, NER span F1, image AUC,
    # mean LLM calls, mean images per sample
    assert half == [
        made["0.5"].name, "2", "template", "phantom", "394", "400", "6 (1.50 %)", "0.901", "0.997",
        "0.644 / 0.605", "3.00", "1.33",
    ]  # fmt: skip
    full = [c.strip() for c in rows[made["1.0"].name].strip("|").split("|")]
    assert full[6:10] == ["0 (0.00 %)", "", "", ""]  # nothing measured: blank, not zero
