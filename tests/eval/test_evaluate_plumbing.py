"""evaluate.py's machinery on an untrained tiny model: checkpoint loading, the embedding cache,
skips, protocols, output files and every task end to end (seconds, no training)."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from syncxr.eval.checkpoint import load_trained
from syncxr.eval.evaluation_job import run_evaluation
from syncxr.models.convirt import ConVIRT
from tests.figures import recorded_figures
from tests.helpers import compose_eval, write_undecodable_dicom

CHEX = ["benchmark.chexpert.twin.n_train=40", "benchmark.chexpert.twin.n_valid=30", "benchmark.chexpert.twin.n_test=60"]
ZS_CHEX = ["task=[zeroshot_cls]", "task.zeroshot_cls.datasets=[chexpert]", *CHEX]


def test_load_trained_rebuilds_the_saved_weights(untrained_run, tmp_path):
    model, tokenizer, cfg = load_trained(untrained_run)
    saved = load_file(untrained_run / "model.safetensors")
    state = model.state_dict()
    assert set(saved) == set(state) and all(torch.equal(saved[k], state[k]) for k in saved)
    assert not model.training and cfg.model.name == "convirt"
    assert tokenizer("no edema.")["input_ids"]
    (tmp_path / "resolved_config.yaml").write_text((untrained_run / "resolved_config.yaml").read_text())
    with pytest.raises(FileNotFoundError, match="model.safetensors not found"):
        load_trained(tmp_path)


@pytest.mark.slow  # end to end (the quick loop, pytest -m 'not slow', stays under two minutes)
def test_cache_protocol_and_outputs(untrained_run, tmp_path):
    cache = f"embedding_cache={tmp_path / 'cache'}"
    m = run_evaluation(compose_eval(untrained_run, [*ZS_CHEX, cache]), tmp_path / "a")
    assert all(isinstance(v, float) for v in m.values())
    assert {
        "zeroshot_cls/chexpert/auc",
        "zeroshot_cls/chexpert/f1",
        "zeroshot_cls/chexpert/acc",
        "zeroshot_cls/chexpert/pleural_effusion/auc",
        "zeroshot_cls/chexpert/edema/f1",
    } <= set(m)
    info = json.loads((tmp_path / "a" / "evaluation.json").read_text())
    assert info["protocol"] == "val" and info["cache"]["misses"] == 2  # test and valid encoded
    assert info["details"]["zeroshot_cls"]["chexpert"]["threshold_source"] == "valid"
    md = (tmp_path / "a" / "results.md").read_text()
    assert "**protocol**: val" in md and "| chexpert |" in md and "thresholds from" in md
    assert json.loads((tmp_path / "a" / "metrics.json").read_text()) == m

    # New prompts re-score from the cache: no image is encoded again, the scores change.
    b = run_evaluation(
        compose_eval(untrained_run, [*ZS_CHEX, cache, "task.zeroshot_cls.prompts.positive=['{} is seen.']"]),
        tmp_path / "b",
    )
    info = json.loads((tmp_path / "b" / "evaluation.json").read_text())
    assert info["cache"] == {"dir": str(tmp_path / "cache"), "hits": 2, "misses": 0}
    assert b["zeroshot_cls/chexpert/auc"] != m["zeroshot_cls/chexpert/auc"]
    # Another transform is another key.
    run_evaluation(compose_eval(untrained_run, [*ZS_CHEX, cache, "image_size=32"]), tmp_path / "c")
    assert json.loads((tmp_path / "c" / "evaluation.json").read_text())["cache"]["misses"] == 2

    # protocol=paper: thresholds from the test split, so F1 can only be as good or better.
    p = run_evaluation(compose_eval(untrained_run, [*ZS_CHEX, cache, "protocol=paper"]), tmp_path / "p")
    info = json.loads((tmp_path / "p" / "evaluation.json").read_text())
    assert info["protocol"] == "paper" and info["details"]["zeroshot_cls"]["chexpert"]["threshold_source"] == "test"
    assert p["zeroshot_cls/chexpert/auc"] == m["zeroshot_cls/chexpert/auc"]
    assert p["zeroshot_cls/chexpert/f1"] >= m["zeroshot_cls/chexpert/f1"] - 1e-12
    assert "**protocol**: paper" in (tmp_path / "p" / "results.md").read_text()


def test_bad_images_fail_naming_file_and_row_or_are_counted_skips(untrained_run, tmp_path, cache_dir, caplog):
    from syncxr.benchmarks.chexpert import CheXpert

    src = CheXpert(twin={"n_valid": 30, "n_test": 60, "image_size": 64}).root_dir(cache_dir, progress=False)
    root = tmp_path / "chexpert"
    shutil.copytree(src, root)
    df = pd.read_csv(root / "test.csv")
    (root / df["Path"][5]).write_bytes(b"garbage")  # corrupt
    (root / df["Path"][7]).unlink()  # missing
    df.loc[9, "Path"] = "compressed.dcm"  # JPEG 2000 that no installed plugin decodes
    df.to_csv(root / "test.csv", index=False)
    write_undecodable_dicom(root / "compressed.dcm")
    real = [*ZS_CHEX, f"benchmark.chexpert.root={root}", "embedding_cache=null"]
    with pytest.raises(FileNotFoundError, match=r"test.csv: row 7: image .*view1_frontal.png not found"):
        run_evaluation(compose_eval(untrained_run, real), tmp_path / "a")
    (root / df["Path"][7]).write_bytes((src / df["Path"][7]).read_bytes())
    with pytest.raises(ValueError, match=r"test.csv: row 5: image .* could not be decoded"):
        run_evaluation(compose_eval(untrained_run, real), tmp_path / "a")
    (root / df["Path"][5]).write_bytes((src / df["Path"][5]).read_bytes())
    with pytest.raises(ValueError, match=r"test.csv: row 9: image .*compressed.dcm could not be decoded as DICOM"):
        run_evaluation(compose_eval(untrained_run, real), tmp_path / "a")
    (root / df["Path"][5]).write_bytes(b"garbage")
    (root / df["Path"][7]).unlink()
    with caplog.at_level(logging.WARNING):
        m = run_evaluation(compose_eval(untrained_run, [*real, "benchmark.chexpert.on_error=skip"]), tmp_path / "b")
    assert m["zeroshot_cls/chexpert/skipped"] == 3.0
    # evaluation.json counts every row left out (the missing one was its only entry), each logged by path.
    details = json.loads((tmp_path / "b" / "evaluation.json").read_text())["details"]
    assert details["skipped"] == {str(root / "test.csv"): 3}
    assert details["skipped_rows"] == {str(root / "test.csv"): [5, 7, 9]}
    assert f"row 9: image {root}/compressed.dcm could not be decoded" in caplog.text
    assert f"row 7 {root / df['Path'][7]}" in caplog.text  # the missing one


def test_the_own_map_of_a_model_declaring_local_maps_is_used(untrained_run, tmp_path, monkeypatch):
    calls = []

    def word_similarity(self, images, input_ids, attention_mask, token_mask=None):
        calls.append(images.shape)
        return images[:, 0, ::16, ::16]  # "bright is the finding": B x 3 x 3 at 48 px, 6 x 6 at 96

    # A LocalMapModel (models/protocols.py): has_local_maps declared, its three maps implemented.
    monkeypatch.setattr(ConVIRT, "has_local_maps", True)
    monkeypatch.setattr(ConVIRT, "word_similarity", word_similarity, raising=False)
    monkeypatch.setattr(ConVIRT, "word_attention", lambda self, *args: None, raising=False)
    monkeypatch.setattr(ConVIRT, "final_conv_map", lambda self, images: None, raising=False)
    with recorded_figures() as figures:
        m = run_evaluation(
            compose_eval(
                untrained_run,
                ["task=[zeroshot_grounding]", "task.zeroshot_grounding.datasets=[siim]", "embedding_cache=null"],
            ),
            tmp_path,
        )
    info = json.loads((tmp_path / "evaluation.json").read_text())["details"]["zeroshot_grounding"]["siim"]
    # upscale=auto: a model's own map is taken at the run's image size (48 px here).
    assert {c[-1] for c in calls} == {48} and info["image_size"] == 48
    assert info["map_source"] == "model.word_similarity" and info["map_shape"] == [3, 3]
    assert 0 <= m["zeroshot_grounding/siim/dice"] <= 1 and (tmp_path / "grounding.png").is_file()
    # grounding.png: a row per case (3), panels image | map over image | prediction | ground truth; the
    # prediction is the map at the scored threshold and the ground truth a non-empty mask.
    axes = figures["grounding.png"].axes
    assert len(axes) == 3 * 4 and [ax.get_title() for ax in axes[:4]] == ["image", "map", "prediction", "ground truth"]
    for r in range(3):
        image, (under, heat), prediction, truth = [ax.get_images() for ax in axes[4 * r : 4 * (r + 1)]]
        data = [np.asarray(im[0].get_array()) for im in (image, prediction, truth)] + [np.asarray(heat.get_array())]
        assert len({d.shape for d in data}) == 1 and np.array_equal(np.asarray(under.get_array()), data[0])
        assert np.array_equal(data[1], data[3] >= m["zeroshot_grounding/siim/threshold"])
        assert set(np.unique(data[2])) == {0, 1}


@pytest.mark.slow  # end to end (the quick loop, pytest -m 'not slow', stays under two minutes)
def test_every_task_runs_end_to_end(untrained_run, tmp_path):
    tasks = "task=[zeroshot_cls,zeroshot_grounding,linear_probe,finetune_cls,finetune_seg,retrieval]"
    fast = [
        "task.finetune_cls.steps=2",
        "task.finetune_seg.steps=2",
        "task.finetune_cls.batch_size=8",
        "task.finetune_seg.batch_size=4",
        "task.finetune_cls.datasets=[rsna]",
        "task.finetune_seg.datasets=[siim]",
        "task.linear_probe.datasets=[chexpert,covidx]",
        "embedding_cache=null",
    ]
    m = run_evaluation(compose_eval(untrained_run, [tasks, *CHEX, *fast]), tmp_path)
    for key in (
        "zeroshot_cls/padchest_unseen/auc",
        "zeroshot_cls/padchest_rare/hiatal_hernia/auc",
        "zeroshot_cls/chestxray14_rare/auc",
        "zeroshot_cls/chestxray14_rare/hernia/auc",
        "zeroshot_cls/covidx/f1",
        "zeroshot_grounding/covid_rural/dice",
        "zeroshot_grounding/rsna/random_dice",
        "linear_probe/chexpert/auc_1pct",
        "linear_probe/covidx/auc_100pct",
        "finetune_cls/rsna/auc_10pct",
        "finetune_seg/siim/dice_100pct",
        "finetune_seg/siim/iou_1pct",
        "retrieval/phantom/i2t_r10",
        "retrieval/phantom/t2i_r1",
    ):
        assert key in m and np.isfinite(m[key]), key
    for key, v in m.items():
        assert len(key.split("/")) in (3, 4) and isinstance(v, float), key
    md = (tmp_path / "results.md").read_text()
    for task in ("zeroshot_cls", "zeroshot_grounding", "linear_probe", "finetune_cls", "finetune_seg", "retrieval"):
        assert f"## {task}" in md
    assert (tmp_path / "grounding.png").stat().st_size > 10_000


def test_config_errors_name_the_key(untrained_run, tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark 'mimic'"):
        run_evaluation(
            compose_eval(untrained_run, ["task=[zeroshot_cls]", "task.zeroshot_cls.datasets=[mimic]"]), tmp_path
        )
    with pytest.raises(ValueError, match="class_sets has no 'common'"):
        run_evaluation(
            compose_eval(untrained_run, ["task=[zeroshot_cls]", "task.zeroshot_cls.datasets=[padchest:common]"]),
            tmp_path,
        )
    with pytest.raises(ValueError, match=r"benchmark.rsna.twin: .*unexpected keyword argument 'colour'"):
        run_evaluation(
            compose_eval(
                untrained_run,
                ["task=[zeroshot_cls]", "task.zeroshot_cls.datasets=[rsna]", "+benchmark.rsna.twin.colour=red"],
            ),
            tmp_path,
        )
    with pytest.raises(ValueError, match="protocol must be one of"):
        run_evaluation(compose_eval(untrained_run, ["protocol=best"]), tmp_path)


def test_gradcam_maps_run_through_the_grounding_task(untrained_run, tmp_path):
    m = run_evaluation(
        compose_eval(
            untrained_run,
            [
                "task=[zeroshot_grounding]",
                "task.zeroshot_grounding.datasets=[siim]",
                "task.zeroshot_grounding.map=gradcam",
                "embedding_cache=null",
                "task.zeroshot_grounding.upscale=2",
            ],
        ),
        tmp_path,
    )
    info = json.loads((tmp_path / "evaluation.json").read_text())["details"]["zeroshot_grounding"]["siim"]
    # 48-px run, mapped at 96 px (upscale=2): ResNet-18's third stage is 6 x 6 there.
    assert info["map_source"] == "grad-cam of the image embedding at layer3" and info["map_shape"] == [6, 6]
    assert 0 <= m["zeroshot_grounding/siim/dice"] <= m["zeroshot_grounding/siim/oracle_dice"]
    with pytest.raises(ValueError, match="gradcam_layer='head'"):
        run_evaluation(
            compose_eval(
                untrained_run,
                [
                    "task=[zeroshot_grounding]",
                    "task.zeroshot_grounding.datasets=[siim]",
                    "task.zeroshot_grounding.map=gradcam",
                    "task.zeroshot_grounding.gradcam_layer=head",
                ],
            ),
            tmp_path / "b",
        )


def test_auto_upscale_maps_the_last_stage_at_twice_the_run_size_and_finer_maps_at_it(untrained_run, tmp_path):
    from syncxr.eval.tasks import grounding_upscale

    assert grounding_upscale("auto", "contrast", False) == grounding_upscale(None, "positive", False) == 2.0
    assert grounding_upscale("auto", "contrast", True) == 1.0  # GLoRIA: its third stage
    assert grounding_upscale("auto", "gradcam", False) == grounding_upscale("auto", "occlusion", False) == 1.0
    assert grounding_upscale("1.5", "contrast", False) == grounding_upscale(1.5, "contrast", True) == 1.5
    for bad in ("twice", 0, -1):
        with pytest.raises(ValueError, match=r"task.zeroshot_grounding.upscale must be 'auto' or a number > 0"):
            grounding_upscale(bad, "contrast", False)
    run_evaluation(
        compose_eval(
            untrained_run,
            ["task=[zeroshot_grounding]", "task.zeroshot_grounding.datasets=[siim]", "embedding_cache=null"],
        ),
        tmp_path,
    )
    info = json.loads((tmp_path / "evaluation.json").read_text())["details"]["zeroshot_grounding"]["siim"]
    assert info["image_size"] == 96 and info["map_shape"] == [3, 3]  # ConVIRT's last stage at 2 x 48 px


def test_truncated_weights_name_the_file(untrained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(untrained_run, run)
    blob = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(blob[: len(blob) // 3])  # a run killed while writing it
    with pytest.raises(ValueError, match=rf"{run / 'model.safetensors'}: not a readable safetensors file"):
        load_trained(run)
