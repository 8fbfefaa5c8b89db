"""evaluate.py on a ConVIRT checkpoint trained with the BUDGET recipe (the session's `trained_run`):
zero-shot classification, grounding against a random-map baseline, fine-tuning with more and fewer
labels, retrieval, and the command line; and that training learnt what the untrained model cannot.
All tests of `trained_run` live here: xdist runs a file on one worker, which trains it once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from syncxr.eval.evaluation_job import run_evaluation
from tests.helpers import BUDGET_CHEXPERT, BUDGET_MIN_AUC, REPO, compose_config, compose_eval, small_twins

pytestmark = pytest.mark.slow


def compose_trained(run, overrides=()):
    """evaluate.yaml for a BUDGET-recipe run: small twins rendered at the default 128 px, as the
    corpora the run trained on (the plumbing tests' 64-px twins would be upsampled)."""
    return compose_eval(run, [*small_twins(image_size=128), *overrides])


def test_pretraining_learns_what_untrained_cannot(trained_run, untrained_budget_run):
    untrained = json.loads((untrained_budget_run / "metrics.json").read_text())
    trained = json.loads((trained_run / "metrics.json").read_text())  # the BUDGET recipe, trained once
    assert 0.4 <= untrained["zeroshot_cls/chexpert/auc"] <= 0.6, untrained
    assert trained["zeroshot_cls/chexpert/auc"] >= BUDGET_MIN_AUC, trained
    # Some finding is learnt almost perfectly: what separates learning from luck.
    assert (
        max(
            v
            for k, v in trained.items()
            if k.startswith("zeroshot_cls/chexpert/") and k.endswith("/auc") and k.count("/") == 3
        )
        > 0.8
    )


def test_zeroshot_auc_on_the_chexpert_twin_matches_training(trained_run, tmp_path):
    m = run_evaluation(
        compose_trained(
            trained_run, ["task=[zeroshot_cls]", "task.zeroshot_cls.datasets=[chexpert]", *BUDGET_CHEXPERT]
        ),
        tmp_path,
    )
    trained = json.loads((trained_run / "metrics.json").read_text())
    # The same images, prompts and thresholds as the training run's own evaluation: the same numbers.
    for key in ("zeroshot_cls/chexpert/auc", "zeroshot_cls/chexpert/cardiomegaly/auc"):
        assert m[key] == pytest.approx(trained[key], abs=1e-4), key
    # (F1 and ACC hinge on one threshold each: a last-digit difference can move a case across it.)
    assert m["zeroshot_cls/chexpert/f1"] == pytest.approx(trained["zeroshot_cls/chexpert/f1"], abs=0.02)
    assert m["zeroshot_cls/chexpert/auc"] >= BUDGET_MIN_AUC, m


# Grounding twins of the small budget: half of each RSNA / SIIM split positive, every COVID Rural image.
GROUNDING_TWINS = [
    f"benchmark.{b}.twin.{k}={v}"
    for b in ("rsna", "siim", "covid_rural")
    for k, v in (("image_size", 128), ("n_valid", 40), ("n_test", 120))
] + [f"benchmark.{b}.twin.prevalence=0.5" for b in ("rsna", "siim")]


def test_grounding_finds_the_rsna_pneumonia_and_the_untrained_model_does_not(
    trained_run, untrained_budget_run, tmp_path
):
    """Issue 15, as far as it holds: occluding the 8 x 8 cells of the input shows where the trained
    ConVIRT finds the RSNA twin's pneumonia (Dice - random Dice: +0.20, +0.21 for seeds 0, 1 of the
    default, +0.12 at 800 steps; untrained +0.01); the default contrast maps are scored beside the
    random and oracle maps. SIIM and COVID Rural grounding stay near the random level (sweeps/README.md)."""
    out = {}
    for name, run in (("trained", trained_run), ("untrained", untrained_budget_run)):
        m = run_evaluation(
            compose_trained(
                run,
                [
                    "task=[zeroshot_grounding]",
                    *GROUNDING_TWINS,
                    "task.zeroshot_grounding.datasets=[rsna]",
                    "task.zeroshot_grounding.map=occlusion",
                    "task.zeroshot_grounding.upscale=1",
                ],
            ),
            tmp_path / name,
        )
        out[name] = {k: round(m[f"zeroshot_grounding/rsna/{k}"], 3) for k in ("dice", "random_dice", "oracle_dice")}
        assert m["zeroshot_grounding/rsna/n_positive"] == 60  # exactly half of 120
    print(out)
    t, u = out["trained"], out["untrained"]
    assert t["dice"] >= t["random_dice"] + 0.1, out
    assert abs(u["dice"] - u["random_dice"]) < 0.05, out
    assert t["oracle_dice"] > 0.8, out  # an 8 x 8 grid can draw the boxes: resolution is not what limits
    details = json.loads((tmp_path / "trained" / "evaluation.json").read_text())["details"]["zeroshot_grounding"]
    assert details["rsna"]["map_shape"] == [8, 8] and details["rsna"]["map_source"].startswith("occlusion")
    assert details["rsna"]["prompts"].startswith("mean embedding of ['right pneumonia.'"), details  # not the max
    # The default maps (contrast, at twice the input size) on all three twins: scored with both baselines.
    m = run_evaluation(
        compose_trained(trained_run, ["task=[zeroshot_grounding]", *GROUNDING_TWINS]), tmp_path / "contrast"
    )
    for twin in ("rsna", "siim", "covid_rural"):
        g = f"zeroshot_grounding/{twin}"
        assert m[f"{g}/random_dice"] < m[f"{g}/oracle_dice"] and 0 < m[f"{g}/dice"] < m[f"{g}/oracle_dice"], m
        assert m[f"{g}/dice_ci_low"] <= m[f"{g}/dice"] <= m[f"{g}/dice_ci_high"], m
        # The margin over the random map is paired per image: its mean is the difference of the means.
        assert m[f"{g}/dice_over_random"] == pytest.approx(m[f"{g}/dice"] - m[f"{g}/random_dice"], abs=1e-9), m
        assert m[f"{g}/dice_over_random_ci_low"] <= m[f"{g}/dice_over_random"] <= m[f"{g}/dice_over_random_ci_high"]
    assert (tmp_path / "contrast" / "grounding.png").is_file()
    # Less the validation split's normal map where the twin has normal images; COVID Rural has none.
    details = json.loads((tmp_path / "contrast" / "evaluation.json").read_text())["details"]["zeroshot_grounding"]
    references = [details[t]["reference"].split(":")[0] for t in ("rsna", "siim", "covid_rural")]
    assert references == ["normal", "normal", "none"], references
    # One prompt per side, combined per cell by their max (the phantom default).
    assert details["siim"]["prompts"].startswith("max over ['right pneumothorax.', 'left pneumothorax.'] less"), details


# Fine-tuning all weights on the CheXpert twin's 300 training images (or 1 % of them), 15 steps.
FINETUNE_CLS = [
    "benchmark.chexpert.twin.n_train=300",
    *BUDGET_CHEXPERT[1:],
    "task.finetune_cls.datasets=[chexpert]",
    "task.finetune_cls.fractions=[0.01,1.0]",
    "task.finetune_cls.steps=15",
    "task.finetune_cls.batch_size=16",
]


def test_more_labels_beat_fewer(trained_run, untrained_budget_run, tmp_path):
    overrides = [
        "task=[linear_probe,finetune_cls,finetune_seg]",
        *FINETUNE_CLS,
        "task.linear_probe.datasets=[chexpert]",
        "task.linear_probe.fractions=[0.01,1.0]",
        "task.finetune_seg.datasets=[siim]",
        "task.finetune_seg.fractions=[0.01,1.0]",
        "task.finetune_seg.steps=30",
        "task.finetune_seg.batch_size=8",
    ]
    m = run_evaluation(compose_trained(trained_run, overrides), tmp_path / "trained")
    print({k: round(v, 3) for k, v in m.items() if k.count("/") == 2})
    assert m["linear_probe/chexpert/auc_100pct"] > m["linear_probe/chexpert/auc_1pct"] + 0.03, m
    # Measured: 0.762 at 100 %, 0.672 at 1 % (3 labels).
    assert m["finetune_cls/chexpert/auc_100pct"] > m["finetune_cls/chexpert/auc_1pct"] + 0.04, m
    # Pre-training beats random initialisation under the same fine-tuning budget (measured: 0.763
    # against 0.561 from the untrained BUDGET model, 2026-12-07). All labels only: each fraction's fine-tuning
    # starts from the suite's seed, so the 1 % run beside it would change nothing but the time.
    scratch = run_evaluation(
        compose_trained(
            untrained_budget_run, ["task=[finetune_cls]", *FINETUNE_CLS, "task.finetune_cls.fractions=[1.0]"]
        ),
        tmp_path / "untrained",
    )
    print("from random initialisation:", {k: round(v, 3) for k, v in scratch.items() if k.count("/") == 2})
    assert m["finetune_cls/chexpert/auc_100pct"] > scratch["finetune_cls/chexpert/auc_100pct"] + 0.04, (m, scratch)
    assert m["finetune_seg/siim/dice_100pct"] > m["finetune_seg/siim/dice_1pct"] + 0.1, m
    labels = json.loads((tmp_path / "trained" / "evaluation.json").read_text())["details"]["linear_probe"]["chexpert"]
    assert labels["labels_100pct"] == 300 and labels["labels_1pct"] < 15


def test_retrieval_beats_chance_and_the_untrained_model(trained_run, untrained_budget_run, tmp_path):
    """Image-text retrieval among 200 pairs (chance R@10: 0.05 each way), trained against untrained.
    Measured (i2t + t2i R@10): trained 0.245, untrained 0.09; chance 0.10, and a random model's
    sum has a spread of about 0.02."""
    r10 = {}
    for name, run in (("trained", trained_run), ("untrained", untrained_budget_run)):
        m = run_evaluation(
            compose_config(
                "evaluate",
                [
                    f"checkpoint={run}",
                    "task=[retrieval]",
                    "task.retrieval.datasets.phantom.dataset.n=200",
                    "task.retrieval.datasets.phantom.dataset.image_size=128",
                ],
            ),
            tmp_path / name,
        )
        assert m["retrieval/phantom/n_pairs"] == 200
        assert m["retrieval/phantom/i2t_r1"] <= m["retrieval/phantom/i2t_r5"] <= m["retrieval/phantom/i2t_r10"]
        r10[name] = m["retrieval/phantom/i2t_r10"] + m["retrieval/phantom/t2i_r10"]
    print(r10)
    chance = 2 * 10 / 200
    assert r10["untrained"] < chance + 0.07, r10  # the control is at chance
    assert r10["trained"] > chance + 0.07 and r10["trained"] > r10["untrained"] + 0.07, r10


def test_zeroshot_on_other_benchmarks_beats_the_untrained_model(trained_run, untrained_budget_run, tmp_path):
    """Zero-shot AUC on twins other than CheXpert (200 test images each), trained against untrained.
    Measured: RSNA pneumonia 0.924 / 0.555, COVIDx 0.998 / 0.409 (ChestX-ray14 0.641 / 0.501 and
    SIIM 0.694 / 0.526 are printed, not asserted)."""
    auc = {}
    for name, run in (("trained", trained_run), ("untrained", untrained_budget_run)):
        m = run_evaluation(
            compose_trained(
                run,
                [
                    "task=[zeroshot_cls]",
                    *small_twins(image_size=128, n_test=200),
                    "task.zeroshot_cls.datasets=[rsna,covidx,chestxray14,siim]",
                ],
            ),
            tmp_path / name,
        )
        auc[name] = {k.split("/")[1]: round(v, 3) for k, v in m.items() if k.count("/") == 2 and k.endswith("/auc")}
    print(auc)
    t, u = auc["trained"], auc["untrained"]
    assert t["rsna"] >= 0.8 and t["rsna"] >= u["rsna"] + 0.2, auc
    assert t["covidx"] >= 0.85 and t["covidx"] >= u["covidx"] + 0.25, auc


def test_command_line_writes_metrics_markdown_and_figure(trained_run, tmp_path, cache_dir):
    args = [
        f"checkpoint={trained_run}",
        "task=[zeroshot_cls,zeroshot_grounding]",
        *small_twins(image_size=128),
        *BUDGET_CHEXPERT,
        "task.zeroshot_cls.datasets=[chexpert,rsna]",
        "task.zeroshot_grounding.datasets=[siim]",
        "protocol=paper",
        "logger=wandb",
        "logger.mode=offline",
    ]
    env = {**os.environ, "SYNCXR_CACHE": str(cache_dir), "SYNCXR_OUTPUTS": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "evaluate.py"), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (out,) = [p.parent for p in (tmp_path / "evaluate").glob("*/metrics.json")]
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(isinstance(v, float) for v in metrics.values())
    assert {
        "zeroshot_cls/chexpert/auc",
        "zeroshot_cls/rsna/pneumonia/f1",
        "zeroshot_grounding/siim/dice",
        "zeroshot_grounding/siim/random_dice",
    } <= set(metrics)
    assert json.loads((out / "evaluation.json").read_text())["protocol"] == "paper"
    assert "**protocol**: paper" in (out / "results.md").read_text()
    assert (out / "grounding.png").stat().st_size > 5_000 and (out / "resolved_config.yaml").is_file()
    assert len(list((out / "wandb").glob("offline-run-*/*.wandb"))) == 1  # logger=wandb: one offline run
