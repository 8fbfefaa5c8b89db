"""Overrides are checked where the config enters: every numeric, boolean and choice key of the shipped
configs has a rule (a key added without one fails here), every shipped config passes, each bad
override found by the second reliability round is refused naming the key and its allowed values, and
the entry points say so in one line with a non-zero exit and no traceback."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from syncxr.config import ConfigError, secret_keys
from syncxr.config_validation import config_errors, rule_for, validate
from tests.helpers import REPO, compose_config, compose_train, run_cli

ALL_TASKS = "task=[zeroshot_cls,zeroshot_grounding,linear_probe,finetune_cls,finetune_seg,retrieval]"


def _choices(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


# Every choice of these groups is composed; the i-th composition takes each group's i-th choice (one
# compose per choice would take a minute on 2 cores).
ZIPPED = (
    "llm",
    "ner",
    "imagegen",
    "sampling",
    "curation",
    "corpus",
    "data",
    "image_encoder",
    "text_encoder",
    "model",
    "eval",
    "logger",
    "recipe",
    "generation",
    "scheduler",
)


def _compositions():
    """(config name, overrides) of the entry points' defaults and of every choice of every group."""
    yield from [
        ("train", []),
        ("generate", ["dry_run=true", "workers=4", "worker=3"]),
        ("analyze", ["dataset@corpus=mimic_cxr", "ner=rate_ner", "curation=paper"]),
        (
            "analyze",
            ["image_features=rad_dino", "report_features=medcpt", "dataset@synthetic=path", "synthetic.path=x"],
        ),
        ("evaluate", ["checkpoint=x", ALL_TASKS, "protocol=paper", "precision=bf16", "logger=wandb"]),
    ]
    choices = {group: _choices(group) for group in ZIPPED}
    choices["dataset@real_corpus"] = ["generated", "mimic_cxr", "phantom_syn"]
    for i in range(max(map(len, choices.values()))):
        yield "train", [f"{group}={names[i]}" for group, names in choices.items() if i < len(names)]
    for choice in _choices("i2r"):
        yield "train", ["data=real_image_syn_report", f"i2r@data.syn.i2r={choice}"]
    for choice in _choices("experiment"):
        yield "train", [f"experiment={choice}"]


def _leaves(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{path}.{i}")
    else:
        yield path, node


def test_every_numeric_and_boolean_key_has_a_rule_and_every_shipped_config_passes():
    missing, refused = set(), []
    for name, overrides in _compositions():
        cfg = compose_config(name, overrides)
        refused += [f"{name} {overrides}: {e}" for e in config_errors(cfg)]
        for path, value in _leaves(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)):
            if isinstance(value, (bool, int, float)) and rule_for(path) is None:
                missing.add(path)
    assert not missing, f"keys without a rule in syncxr/config_validation.py RULES: {sorted(missing)}"
    assert not refused, refused


# (entry point, override, what the message must say): the overrides the second round got through.
BAD = [
    ("generate", "sampling.k=-1", "sampling.k=-1: must be an integer >= 1"),
    ("generate", "until=nothing", "until='nothing': must be one of vocab | plan | all"),
    ("train", "trainer.max_steps=0", "trainer.max_steps=0: must be an integer >= 1 or null"),
    ("train", "trainer.max_steps=-3", "trainer.max_steps=-3: must be an integer >= 1 or null"),
    ("train", "seed=-1", "seed=-1: must be an integer in [0, 4294967295]"),
    ("generate", "generation.seed=-1", "generation.seed=-1: must be an integer in [0, 4294967295]"),
    ("generate", "generation.n_samples=1.5", "generation.n_samples=1.5: must be an integer >= 1"),
    ("generate", "generation.n_samples=abc", "generation.n_samples='abc': must be an integer >= 1"),
    ("train", "loader.image_size=0", "loader.image_size=0: must be an integer >= 1"),
    ("train", "generation.n_samples=null", "generation.n_samples=None: must be an integer >= 1"),
    ("train", "trainer.precision=fp32", "trainer.precision='fp32': must be one of no | bf16 | fp16"),
    ("train", "loader.crop_scale=0", "loader.crop_scale=0: must be a number in (0, 1]"),
    ("train", "dry_run=maybe", "dry_run='maybe': must be true or false"),
    ("train", "optimizer.lr=nan", "optimizer.lr=nan: must be a number > 0"),
    ("train", "corpus.n=0", "corpus.n=0: must be an integer >= 1"),  # an interpolation overridden
    ("train", "llm=llama31_8b llm.timeout_s=0", "llm.timeout_s=0: must be a number > 0"),
    (
        "evaluate",
        "task.zeroshot_grounding.upscale=big",
        "task.zeroshot_grounding.upscale='big': must be auto or a number > 0 or null",
    ),
    (
        "evaluate",
        "task.zeroshot_grounding.prompts.ensemble=median",
        "task.zeroshot_grounding.prompts.ensemble='median': must be one of mean | max",
    ),
    (
        "evaluate",
        "benchmark.rsna.twin.prevalence=1.0",
        "benchmark.rsna.twin.prevalence=1.0: must be a number in (0, 1)",
    ),
    ("analyze", "analyses=[curation,tail]", "analyses.1='tail': must be one of curation | long_tail"),
]


@pytest.mark.parametrize("name,override,message", BAD, ids=[b[1] for b in BAD])
def test_a_bad_override_is_refused_naming_the_key_and_its_range(name, override, message):
    cfg = compose_config(name, [*override.split(), *(["checkpoint=x"] if name == "evaluate" else [])])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_null_stays_allowed_where_the_config_allows_it():
    validate(
        compose_train(
            [
                "trainer.max_steps=null",
                "data.syn_fraction=null",
                "sampling.tau_max=null",
                "trainer.grad_clip=null",
                "evaluation.image_size=null",
            ]
        )
    )
    validate(compose_train(["trainer.max_steps=5", "data=mix", "data.syn_fraction=0.5", "sampling.tau_max=40"]))
    validate(compose_config("analyze", ["dataset@corpus=mimic_cxr", "corpus.image_size=null"]))  # original size


def test_a_secret_is_refused_as_an_override_and_as_a_config_key():
    assert secret_keys(["+llm.api_key=x", "llm.max_tokens=8", "-m", "++wandb.token=y", "~x.password"]) == [
        "llm.api_key",
        "wandb.token",
    ]
    errors = config_errors(compose_config("generate", ["+curation.judge.client.api_key=sk-1"]))
    assert errors and errors[0].startswith("curation.judge.client.api_key: secrets are not config values")
    assert not config_errors(compose_config("generate", ["llm=llama31_8b", "llm.api_key_env=MY_KEY"]))


def _one_line_refusal(proc, *expected):
    out = proc.communicate(timeout=300)[0]
    lines = [line for line in out.splitlines() if line.strip()]
    assert proc.returncode != 0, out
    assert "Traceback" not in out and len(lines) == 1 and lines[0].startswith("error: "), out
    assert all(text in lines[0] for text in expected), out


def test_the_entry_points_refuse_in_one_line_without_a_traceback(tmp_path):
    # dry_run=true: without the check the job would only price itself and exit 0.
    _one_line_refusal(
        run_cli(["dry_run=true", "loader.image_size=0"], tmp_path / "cache", tmp_path / "out"),
        "loader.image_size=0",
        "an integer >= 1",
    )
    _one_line_refusal(
        run_cli(["dry_run=true", "+llm.api_key=x"], tmp_path / "cache", tmp_path / "out", script="generate.py"),
        "llm.api_key",
        "environment variable",
    )
    assert not (tmp_path / "out").exists() or "api_key" not in str(list((tmp_path / "out").rglob("*")))
