"""Every config the project ships composes, passes the entry points' checks and builds the one way:
every sweep file (with each swept value and each experiment preset), every backend choice through its
`_target_` with no default both in the YAML and in the code, and the phantom dataset addresses stay
where they were."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

from syncxr.benchmarks import build_benchmark
from syncxr.config import BACKEND_GROUPS, LABEL_KEYS, PHANTOM_KEY, ConfigError, is_phantom_preset, plain
from syncxr.config_validation import validate
from syncxr.dataset_dirs import corpus_reader
from syncxr.generation.addresses import generation_hash
from syncxr.generation.generation_job import generation_config
from tests.helpers import REAL_DIR_CORPUS, REPO, compose_config, compose_train

SWEEPS = sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


def compose_sweep(name: str, overrides=(), hydra: bool = False):
    """sweeps/<name>.yaml as `python train.py -cd sweeps -cn <name>` composes it."""
    return compose_config(name, [f"hydra.searchpath=[file://{REPO / 'conf'}]", *overrides], REPO / "sweeps", hydra)


def test_the_repo_ships_sweeps_and_presets():
    assert {"main_table", "entity_ratio", "llm", "imagegen", "sampling", "synthetic_type"} <= set(SWEEPS)
    assert {"convirt_paper", "gloria_paper"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_sweep_composes_with_each_swept_value_and_each_preset(sweep):
    params = dict(compose_sweep(sweep, hydra=True).hydra.sweeper.params)
    assert params, f"sweeps/{sweep}.yaml sweeps nothing"
    jobs = [[f"{key}={value}"] for key, values in params.items() for value in str(values).split(",")]
    jobs += [[f"experiment={e}"] for e in EXPERIMENTS]
    for overrides in jobs:
        cfg = compose_sweep(sweep, overrides)
        # Every interpolation resolves (a broken one fails here, not hours into a SLURM job), and
        # every value is in the range the entry points check.
        OmegaConf.to_container(cfg, resolve=True)
        validate(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_preset_builds_its_generation_and_changes_its_training(experiment):
    base, cfg = compose_train(), compose_train([f"experiment={experiment}"])
    assert generation_config(cfg.generation)  # the generation keys are complete
    assert OmegaConf.to_container(cfg.trainer) != OmegaConf.to_container(base.trainer)


# The addresses of the phantom datasets: a refactor must not move them (moving a class did not: the
# instantiation keys are not hashed, nor are transport settings). They change only with what the data
# are made of; last with the phantom world's version (phantom-v3: 3,000 samples by default, the
# vocabulary built from the very corpus data=real trains on).
PINNED_HASHES = {
    (): "e13cfc41e608",
    ("sampling=longtail",): "e9c8c877a117",
    ("imagegen=randomized",): "c8075f4408e9",
    ("generation.entity_ratio=0.5",): "89628cc65160",
}


@pytest.mark.parametrize("overrides", list(PINNED_HASHES))
def test_phantom_generation_addresses_are_pinned(overrides):
    assert generation_hash(generation_config(compose_train(list(overrides)).generation)) == PINNED_HASHES[overrides]
    if not overrides:
        assert generation_hash(generation_config(compose_config("generate").generation)) == PINNED_HASHES[()]


def test_instantiation_keys_are_not_part_of_an_address():
    gen = generation_config(compose_train().generation)
    moved = {**gen, "llm": {**gen["llm"], "_target_": "somewhere.else.TemplateLLM"}}
    assert generation_hash(moved) == generation_hash(gen)
    assert generation_hash({**gen, "llm": {**gen["llm"], "error_rate": 0.2}}) != generation_hash(gen)


def _sections():
    """(config key, section) of every backend choice the repo ships."""
    for group in ("llm", "ner", "imagegen", "model", "image_encoder", "text_encoder"):
        for p in sorted((REPO / "conf" / group).glob("*.yaml")):
            yield f"{group}={p.stem}", compose_train([f"{group}={p.stem}"])[group]
    for p in sorted((REPO / "conf" / "i2r").glob("*.yaml")):
        cfg = compose_train(["data=real_image_syn_report", f"i2r@data.syn.i2r={p.stem}"])
        yield f"i2r={p.stem}", cfg.data.syn.i2r
    for group in ("image_features", "report_features"):  # analyze.py's Figure 4 embedders
        for p in sorted((REPO / "conf" / group).glob("*.yaml")):
            yield f"{group}={p.stem}", compose_config("analyze", [f"{group}={p.stem}"])[group]
    for p in sorted((REPO / "conf" / "curation").glob("*.yaml")):
        cur = compose_train([f"curation={p.stem}"]).curation
        for part in ("judge", "embedding"):
            if part in cur:
                yield f"curation={p.stem} {part}", cur[part]


def _check_section(where: str, section: dict) -> None:
    target = get_object(section["_target_"])  # imports the module: the target exists
    # A class that takes its settings as **kwargs names the dataclass they build (`settings_type`).
    params = inspect.signature(getattr(target, "settings_type", target)).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    for key, value in section.items():
        if key.startswith("_") or key in LABEL_KEYS or key == PHANTOM_KEY:
            continue
        assert key in params or takes_any, f"{where}: {target.__qualname__} takes no {key!r}"
        if key in params:
            assert params[key].default is inspect.Parameter.empty, (
                f"{where}: {key!r} has a default both in the YAML and in {target.__qualname__}"
            )
        if isinstance(value, dict) and "_target_" in value:
            _check_section(f"{where}.{key}", value)


def test_every_backend_choice_has_a_target_and_no_default_twice():
    seen = 0
    for where, section in _sections():
        s = plain(section)
        assert "_target_" in s, f"{where}: no _target_"
        _check_section(where, s)
        seen += 1
    assert seen >= 25


def test_every_benchmark_section_is_its_class_settings():
    """conf/benchmark/<name>.yaml: Hydra passes a section's keys to its Benchmark class as **settings,
    each a field of the class's `settings_type`; a key the settings lack is refused, naming the section."""
    benches = compose_train().benchmark
    names = sorted(p.stem for p in (REPO / "conf" / "benchmark").glob("*.yaml") if p.stem != "all")
    assert sorted(benches) == names
    for name in names:
        section = plain(benches[name])
        fields = {f.name for f in dataclasses.fields(get_object(section["_target_"]).settings_type)}
        assert set(section) - {"_target_"} <= fields, f"conf/benchmark/{name}.yaml: {set(section) - fields}"
        assert build_benchmark(benches[name], f"benchmark.{name}").key == f"benchmark.{name}"
    with pytest.raises(ValueError, match=r"(?s)benchmark.rsna: .*unexpected keyword argument 'colour'"):
        build_benchmark(OmegaConf.create({**plain(benches.rsna), "colour": "red"}), "benchmark.rsna")


def _preset(group: str, name: str):
    """conf/<group>/<name>.yaml as train.py composes it (i2r is mounted in the data=real_image_syn_report set)."""
    if group == "i2r":
        return compose_train(["data=real_image_syn_report", f"i2r@data.syn.i2r={name}"]).data.syn.i2r
    return compose_train([f"{group}={name}"])[group]


# What each shipped preset declares: the phantom world's own presets, and only they, run on the CPU
# without external weights.
PHANTOM_PRESETS = {
    "llm": {"template", "phantom_lm_small", "phantom_lm_large"},
    "ner": {"lexicon", "phantom_ner"},
    "imagegen": {"phantom", "randomized", "phantom_diffusion", "phantom_diffusion_weak"},
    "curation": {"none", "phantom"},
    "i2r": {"oracle"},
}


@pytest.mark.parametrize("group", BACKEND_GROUPS)
def test_every_backend_preset_declares_whether_it_is_phantom(group):
    names = sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))
    assert names
    declared = {}
    for name in names:
        section = plain(_preset(group, name))
        assert isinstance(section.get(PHANTOM_KEY), bool), f"conf/{group}/{name}.yaml: no boolean {PHANTOM_KEY}"
        declared[name] = is_phantom_preset(section, group)
    assert {n for n, phantom in declared.items() if phantom} == PHANTOM_PRESETS[group]


def test_an_undeclared_preset_is_refused_by_name():
    section = {**plain(_preset("llm", "template")), "name": "mine"}
    del section[PHANTOM_KEY]
    with pytest.raises(ConfigError, match=f"generation.llm.{PHANTOM_KEY}"):
        is_phantom_preset(section, "generation.llm")


def test_a_corpus_is_any_dataset_or_a_file_of_reports(cache_dir, real_dir, tmp_path):
    import pandas as pd  # noqa: PLC0415

    texts = corpus_reader(REAL_DIR_CORPUS, cache_dir)()
    manifest = pd.read_parquet(real_dir / "manifest.parquet")
    assert len(texts) == (manifest["split"] == "train").sum()
    pd.DataFrame({"report": ["No effusion.", "Small pneumothorax."]}).to_csv(tmp_path / "r.csv", index=False)
    assert corpus_reader(
        {"builder": "file", "path": str(tmp_path / "r.csv"), "text_column": "report"}, cache_dir
    )() == ["No effusion.", "Small pneumothorax."]
    with pytest.raises(ValueError, match="corpus: unknown key"):
        corpus_reader({"builder": "file", "path": "x.csv", "text_column": "report", "sep": ";"}, cache_dir)()
