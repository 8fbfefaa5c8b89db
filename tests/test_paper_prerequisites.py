"""Paper mode refuses silent stand-ins: every pretrained component and dataset the paper used must be
given (syncxr.paper_prerequisites), a run that lacks one stops at config time naming the key, and a dry
run lists them all in cost.md; the phantom default needs none of them. Also the data as counted: the
rows held out for validation are not counted as trained, and each generated dataset records how hard
its regeneration loops worked."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from syncxr.config import ConfigError
from syncxr.config_validation import validate
from syncxr.dataset_dirs import generate_dataset
from syncxr.generation.generation_job import generated_dir, generation_config
from syncxr.generation.pipeline import planned_splits
from syncxr.models.image_encoder import build_image_encoder
from syncxr.paper_prerequisites import generation_prerequisites, require, training_prerequisites
from syncxr.results.cost import estimate_job, generation_preflight, trained_rows, write_cost_report, write_job_cost
from tests.helpers import REPO, compose_config, compose_train, run_cli
from tests.test_configs import compose_sweep

PAPER = ["experiment=syncxr_paper"]
ENV = ("SYNCXR_LLM_URL", "SYNCXR_MLLM_URL", "SYNCXR_I2R_URL", "MIMIC_CXR_ROOT")


@pytest.fixture
def no_env(monkeypatch):
    """None of the servers or MIMIC-CXR is given through the environment."""
    for var in ENV:
        monkeypatch.delenv(var, raising=False)


def _keys(cfg, tmp_path) -> list[str]:
    return [p.key for p in training_prerequisites(cfg, tmp_path / "cache")]


def test_a_missing_weights_path_in_paper_mode_is_an_error_naming_the_key(no_env, tmp_path):
    cfg = compose_train([*PAPER, "data=syn"])
    with pytest.raises(ConfigError, match=r"image_encoder\.weights_path: null.*image_encoder\.random_init=true"):
        require(training_prerequisites(cfg, tmp_path / "cache"))
    # A path that is not there is no weights either; an existing one, or the explicit opt-in, is.
    weights = tmp_path / "resnet50.pth"
    missing = [*PAPER, "data=syn", f"image_encoder.weights_path={weights}"]
    (problem,) = [p.problem for p in training_prerequisites(compose_train(missing), tmp_path) if "image" in p.key]
    assert problem == f"no such path: {weights}"
    torch.save({}, weights)
    assert "image_encoder.weights_path" not in _keys(compose_train(missing), tmp_path)
    assert "image_encoder.weights_path" not in _keys(
        compose_train([*PAPER, "image_encoder.random_init=true"]), tmp_path
    )


@pytest.mark.slow  # a subprocess (imports torch and hydra)
def test_train_py_in_paper_mode_stops_at_config_time_naming_every_missing_key(no_env, tmp_path):
    proc = run_cli([*PAPER, "data=real", "trainer.max_steps=1"], tmp_path / "cache", tmp_path / "out")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out[-3000:]  # the entry points' config error: no traceback, nothing built
    for key in ("image_encoder.weights_path", "real_corpus.root", "curation.judge.client.base_url"):
        assert key in out, (key, out[-3000:])
    assert "Traceback" not in out and not (tmp_path / "cache").exists()


def test_each_study_needs_what_it_composes(no_env, tmp_path):
    """The published components each kind of job needs, and a phantom stand-in named as one."""
    syn = _keys(compose_train([*PAPER, "data=syn"]), tmp_path)
    assert syn == ["image_encoder.weights_path", "llm.base_url", "curation.judge.client.base_url", "corpus.root"]
    assert "llm.base_url" not in _keys(
        compose_train([*PAPER, "data=syn", "llm.base_urls=[http://n:8000/v1]"]), tmp_path
    )
    real = _keys(compose_train([*PAPER, "data=real"]), tmp_path)
    assert real == ["image_encoder.weights_path", "real_corpus.root", "curation.judge.client.base_url"]
    medversa = training_prerequisites(compose_train([*PAPER, "data=real_image_syn_report"]), tmp_path)
    (weights,) = [p for p in medversa if p.key.startswith("data.syn.i2r")]
    assert weights.key == "data.syn.i2r.path" and "MedVersa" in weights.what  # paper mode's preset: MedVersa
    oracle_cfg = compose_train([*PAPER, "data=real_image_syn_report", "i2r@data.syn.i2r=oracle"])
    (oracle,) = [p for p in training_prerequisites(oracle_cfg, tmp_path) if p.key == "data.syn.i2r"]
    assert "phantom-world stand-in" in oracle.problem and "MedVersa" in oracle.what
    (irgen,) = [
        p
        for p in training_prerequisites(compose_train([*PAPER, "data=syn", "imagegen=cxr_irgen"]), tmp_path)
        if p.key.startswith("imagegen")
    ]
    assert irgen.key == "imagegen" and "CheXpert" in irgen.problem  # refused, saying why: no placeholder runs
    llm_cxr = _keys(compose_train([*PAPER, "data=syn", "imagegen=llm_cxr"]), tmp_path)
    assert {"imagegen.path", "imagegen.vqgan_config", "imagegen.vqgan_ckpt"} <= set(llm_cxr)
    assert _keys(compose_train([*PAPER, "data=syn", "llm=template"]), tmp_path)[1] == "llm"
    assert _keys(compose_train([*PAPER, "data=syn", "text_encoder=phantom_bert"]), tmp_path)[1] == "text_encoder"


def test_the_phantom_default_needs_nothing_and_builds_as_before(no_env, tmp_path):
    cfg = compose_train()
    assert cfg.paper_mode is False and cfg.image_encoder.random_init is False
    assert training_prerequisites(cfg, tmp_path) == [] and generation_prerequisites(cfg, tmp_path) == []
    require([])  # nothing to refuse
    torch.manual_seed(0)
    a = build_image_encoder("resnet18", None, None, 16, False)
    torch.manual_seed(0)
    b = build_image_encoder("resnet18", None, None, 16, True)  # random on purpose: the same weights
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="random_init=true and weights_path"):
        build_image_encoder("resnet18", str(tmp_path / "w.pth"), None, None, True)


def test_a_dry_run_lists_every_missing_prerequisite_in_cost_md(no_env, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    jobs = {
        "real": ["data=real"],
        "syn": ["data=syn"],
        "i2r": ["data=real_image_syn_report"],
        "irgen": ["data=syn", "imagegen=cxr_irgen"],  # two placeholder paths: two rows of one key
        "llm_cxr": ["data=syn", "imagegen=llm_cxr"],
    }
    for job, overrides in jobs.items():
        cfg = compose_train([*PAPER, *overrides, f"paths.cache_dir={tmp_path / 'cache'}"])
        (sweep / job).mkdir(parents=True)
        write_job_cost(cfg, sweep / job)
        assert "image_encoder.weights_path" in capsys.readouterr().out  # each job says so on the console too
    text = write_cost_report(sweep).read_text()
    assert "## Missing prerequisites (paper mode): 10" in text
    rows = [line.split("|")[1:6] for line in text.splitlines() if line.startswith("| `")]
    count = {(key.strip(" `"), problem.strip()[:40]): int(n) for key, problem, _, _, n in rows}
    assert count == {
        ("image_encoder.weights_path", "null"): 5,  # every job lacks it
        ("real_corpus.root", "not given (MIMIC_CXR_ROOT is not set)"): 2,
        ("curation.judge.client.base_url", "no server given (SYNCXR_MLLM_URL is not "): 4,
        ("llm.base_url", "no server given (SYNCXR_LLM_URL is not s"): 3,
        ("corpus.root", "not given (MIMIC_CXR_ROOT is not set)"): 3,
        ("data.syn.i2r.path", "not given"): 1,  # MedVersa's weights (paper mode never uses the oracle)
        ("imagegen", "CXR-IRGen cannot run here as published. "): 1,  # refused, saying why
        ("imagegen.path", "not given"): 1,  # LLM-CXR: its LLM, VQ-GAN config and checkpoint
        ("imagegen.vqgan_config", "not given"): 1,
        ("imagegen.vqgan_ckpt", "not given"): 1,
    }
    docs = (REPO / "docs" / "paper-mode.md").read_text()
    assert [k for k, _ in count if f"`{k}`" not in docs] == []  # the docs' table says how to give each
    summary = json.loads((sweep / "cost_summary.json").read_text())
    assert len(summary["missing_prerequisites"]) == 10


@pytest.mark.slow  # every job of every study composed
@pytest.mark.parametrize("study", sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml")))
def test_every_paper_mode_job_resolves_the_published_choices_and_prices_itself(no_env, tmp_path, study):
    """Each job of `python train.py -cd sweeps -cn <study> experiment=syncxr_paper dry_run=true`: what
    it would run, before anything runs, what it lacks and what it costs. (One compose a job serves all
    three: composing is most of this test's cost.)"""
    params = dict(compose_sweep(study, PAPER, hydra=True).hydra.sweeper.params)
    jobs = [[f"{key}={value}"] for key, values in params.items() for value in str(values).split(",")]
    for overrides in jobs:
        cfg = compose_sweep(study, [*PAPER, *overrides, f"paths.cache_dir={tmp_path}"])
        validate(cfg)
        keys = _keys(cfg, tmp_path)
        assert keys[0] == "image_encoder.weights_path" and len(keys) > 1, (study, overrides, keys)
        estimate_job(OmegaConf.to_container(cfg, resolve=True), cfg.cost, tmp_path)  # no crash
        swept, value = overrides[0].split("=", 1)
        assert cfg.ner.name == "rate_ner" and cfg.ner.path == "Angelakeke/RaTE-NER-Deberta"
        assert cfg.llm.name == (value if swept == "llm" else "llama31_70b")
        assert cfg.imagegen.name == (value if swept == "imagegen" else "roentgen")
        if cfg.imagegen.backend == "diffusers":  # RoentGen; LLM-CXR samples tokens, CXR-IRGen is refused
            assert (cfg.imagegen.guidance_scale, cfg.imagegen.num_inference_steps) == (4.0, 50)
        assert cfg.curation.judge.client.model == "OpenGVLab/InternVL2-26B"
        assert (cfg.curation.drop_if_no, cfg.curation.real.drop_if_no) == ("all", "all")
        assert (cfg.curation.bad_bank, cfg.curation.delta) == ("real_rejects", 0.5)
        assert cfg.corpus.builder == cfg.real_corpus.builder == "mimic_cxr" and cfg.data.curate_real
        assert cfg.generation.n_samples == 200000
        assert cfg.image_encoder.arch == (value if swept == "image_encoder" else "resnet50")
        assert cfg.text_encoder._target_.endswith("TextEncoder") and "Bio_ClinicalBERT" in cfg.text_encoder.path
        model = cfg.model.name
        assert cfg.loader.image_size == 224 and cfg.trainer.precision == "bf16" and cfg.trainer.max_steps is None
        if model == "convirt":
            assert cfg.model.proj_dim == 512 and cfg.scheduler._target_.endswith("get_constant_schedule")
        else:
            assert cfg.model.image_size_model == 299 and cfg.scheduler._target_.endswith("ReduceLROnPlateau")
        assert list(cfg.task) == ["zeroshot_cls", "zeroshot_grounding", "finetune_cls", "finetune_seg"]
        assert (cfg.task.finetune_cls.epochs, cfg.task.finetune_cls.batch_size, cfg.task.finetune_cls.lr) == (
            50,
            64,
            1e-4,
        )
        assert cfg.task.finetune_cls.optimizer._target_ == "torch.optim.AdamW"
        assert cfg.evaluation.protocol == "paper"


def test_cost_counts_the_rows_trained_on_not_the_rows_generated(no_env, tmp_path):
    cfg = compose_train([*PAPER, "data=syn"])
    gen = generation_config(cfg.generation)
    job = estimate_job(OmegaConf.to_container(cfg, resolve=True), cfg.cost, tmp_path)
    held_out = int((planned_splits(200000, 0, gen["val_fraction"]) == "val").sum())
    assert gen["val_fraction"] == 0.1 and 19000 < held_out < 21000
    assert job["train_rows"] == 200000 - held_out == trained_rows(gen)


def test_a_generated_dataset_records_its_drop_rate_and_attempts_and_its_held_out_rows(cache_dir, tmp_path):
    small = ["generation.n_samples=60", "generation.shard_size=60", "corpus.n=200", "corpus.image_size=64"]
    capped = ["llm.error_rate=0.5", "generation.max_report_attempts=1", "generation.val_fraction=0.25"]
    gen = generation_config(compose_config("generate", [*small, *capped]).generation)
    out = generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
    info = json.loads((out / "dataset.json").read_text())
    manifest = pd.read_parquet(out / "manifest.parquet")
    attempts, counts = info["attempts"], info["counts"]
    assert counts["dropped"] > 0  # one LLM call per section at a 50 % error rate drops some
    assert attempts["drop_rate"] == pytest.approx(counts["dropped"] / 60)
    assert attempts["mean_report_attempts"] == pytest.approx(manifest["report_attempts"].mean())
    assert attempts["mean_image_attempts"] == pytest.approx(manifest["image_attempts"].mean())
    assert (attempts["max_report_attempts"], attempts["max_image_attempts"]) == (1, gen["max_image_attempts"])
    # The rows held out are the planned ones: the kept rows of the planned training split are trained on.
    plan = dict(zip((f"syn-{gen['seed']}-{i:07d}" for i in range(60)), planned_splits(60, gen["seed"], 0.25)))
    assert list(manifest["split"]) == [plan[i] for i in manifest["id"]]
    dropped_train = sum(split == "train" for i, split in plan.items() if i not in set(manifest["id"]))
    assert int((manifest["split"] == "train").sum()) + dropped_train == trained_rows(gen) < 60


def test_generation_needs_its_backends_only_until_the_dataset_is_made(no_env, tmp_path, capsys):
    cfg = compose_config("generate", [*PAPER, f"paths.cache_dir={tmp_path / 'cache'}", "dry_run=true"])
    gen = generation_config(cfg.generation)
    keys = [p.key for p in generation_prerequisites(cfg, tmp_path / "cache")]
    assert keys == ["llm.base_url", "curation.judge.client.base_url", "corpus.root"]
    # generate.py dry_run=true: priced, and every missing key listed in cost.md and on the console.
    (tmp_path / "run").mkdir()  # Hydra's run dir
    assert generation_preflight(cfg, gen, tmp_path / "cache", tmp_path / "run") is True
    text = (tmp_path / "run" / "cost.md").read_text()
    assert "## Missing prerequisites (paper mode): 3" in text and all(f"`{k}`" in text for k in keys)
    assert "corpus.root" in capsys.readouterr().out
    cfg.dry_run = False
    with pytest.raises(ConfigError, match="3 missing"):
        generation_preflight(cfg, gen, tmp_path / "cache", tmp_path / "run")
    # Made (found by its hash): neither generate.py nor a training job on it needs the backends again.
    target = generated_dir(gen, tmp_path / "cache")
    target.mkdir(parents=True)
    (target / "manifest.parquet").write_bytes(b"")
    assert generation_prerequisites(cfg, tmp_path / "cache") == []
    train = compose_train([*PAPER, "data=syn", f"paths.cache_dir={tmp_path / 'cache'}"])
    assert _keys(train, tmp_path) == ["image_encoder.weights_path"]
