"""Turns config sections into objects. The only module below the entry points that reads config."""

from __future__ import annotations

import inspect
from pathlib import Path

from filelock import FileLock
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .data.mixing import load_table, mix_tables
from .models.convirt import ConVIRT
from .models.image_encoder import build_image_encoder
from .models.phantom_text_encoder import PhantomTextEncoderSpec, ensure_phantom_text_encoder
from .models.text_encoder import TextEncoder
from .phantom.benchmarks import TwinSpec, ensure_twin
from .phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus


def _plain(section) -> dict:
    return OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else dict(section)


def _phantom_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    try:
        corpus = PhantomCorpusSpec(**spec)
    except TypeError as e:
        raise ValueError(f"{key}: {e} (allowed keys: {list(PhantomCorpusSpec.__dataclass_fields__)})") from e
    return ensure_phantom_corpus(corpus, cache_dir)


def _path_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    _check_keys(spec, {"path"}, key, "path")
    path = Path(spec["path"]).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{key}.path: dataset directory {path} not found")
    return path


def _generated_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    _check_keys(spec, {"generation"}, key, "generated")
    return build_generated_dir(spec["generation"], cache_dir, key)


def _check_keys(spec: dict, allowed: set, key: str, builder: str) -> None:
    if set(spec) - allowed:
        raise ValueError(f"{key}: unknown key(s) {sorted(set(spec) - allowed)} for builder {builder!r}; "
                         f"allowed: {sorted(allowed)}")


def _mimic_cxr_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    from .data.mimic_cxr import MimicCxrSpec, ensure_mimic_cxr  # noqa: PLC0415 - keeps this edit local
    try:
        mimic = MimicCxrSpec(**spec)
    except TypeError as e:
        raise ValueError(f"{key}: {e} (allowed keys: {list(MimicCxrSpec.__dataclass_fields__)})") from e
    except ValueError as e:
        raise ValueError(f"{key}.{e}") from e
    return ensure_mimic_cxr(mimic, cache_dir)


def _partial_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    """A real dataset with its reports or its images replaced by generated ones (Table 4b)."""
    from .data.partial_builders import ensure_partial_dataset  # noqa: PLC0415 - backends load only when selected
    if "real" not in spec:
        raise ValueError(f"{key}.real: the real dataset spec is missing")
    return ensure_partial_dataset(spec, build_dataset_dir(spec["real"], cache_dir, f"{key}.real"), cache_dir, key)


# `dataset/*.yaml` builders: name -> fn(spec without `builder`, cache_dir, config key) -> directory.
DATASET_BUILDERS = {"phantom": _phantom_dataset, "path": _path_dataset, "generated": _generated_dataset,
                    "mimic_cxr": _mimic_cxr_dataset, "partial": _partial_dataset}


def build_dataset_dir(spec_cfg, cache_dir: Path, key: str) -> Path:
    """Directory of a dataset config (`dataset/*.yaml`), building (and caching) it if needed."""
    spec = _plain(spec_cfg)
    builder = spec.pop("builder", None)
    if builder not in DATASET_BUILDERS:
        raise ValueError(f"{key}.builder must be one of {sorted(DATASET_BUILDERS)}, got {builder!r}")
    return DATASET_BUILDERS[builder](spec, cache_dir, key)


def build_generated_dir(gen_cfg, cache_dir: Path, key: str) -> Path:
    """The SynCXR dataset of a generation config, found by its hash. A phantom-only config is
    generated on the spot; any other must be made first with the generate.py command named."""
    from .data.dataset_format import is_complete
    from .generation.builders import generation_command, generation_config, is_phantom, run_generation
    from .generation.pipeline import generation_hash
    gen = generation_config(gen_cfg)
    target = cache_dir / "generated" / f"syncxr-{generation_hash(gen)}"
    if is_complete(target):
        return target
    if not is_phantom(gen):
        raise FileNotFoundError(f"{key}: no generated dataset at {target}; make it with\n  "
                                f"{generation_command(gen)}\n(with the same paths.cache_dir)")
    # Jobs of a parallel sweep that need the same data: one generates, the others wait and reuse it.
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if is_complete(target):
            return target
        return run_generation(gen, target, cache_dir)


def build_training_table(data_cfg, cache_dir: Path, seed: int, split: str = "train", curation_cfg=None):
    """Rows to pre-train on for `data=real|syn|mix`, each with its `source`. With
    `data.curate_real=true` the real corpus is first curated by `curation_cfg` (judge + embedding)."""
    tables = {}
    for part in ("real", "syn"):
        if data_cfg.get(part) is not None:
            directory = build_dataset_dir(data_cfg[part], cache_dir, f"data.{part}")
            if part == "real" and data_cfg.get("curate_real"):
                directory = build_curated_dir(directory, curation_cfg)
            tables[part] = load_table(directory, split)
    return mix_tables(tables.get("real"), tables.get("syn"), data_cfg.get("syn_fraction"), seed)


def build_curated_dir(source: Path, curation_cfg) -> Path:
    """The real corpus at `source` curated by a `curation/*.yaml` config (its `real` settings)."""
    from .generation.builders import build_embedder, build_judge
    from .images.corpus_curation import CorpusCurationSettings, ensure_curated_corpus
    cur = _plain(curation_cfg) if curation_cfg is not None else None
    if not cur or cur.get("name") == "none" or "real" not in cur:
        raise ValueError("data.curate_real=true needs a curation config with a `real` section "
                         "(curation=phantom or curation=paper), got "
                         f"{cur.get('name') if cur else None!r}")
    try:
        settings = CorpusCurationSettings(**cur["real"])
    except TypeError as e:
        raise ValueError(f"curation.real: {e}") from e
    # Parallel jobs of a sweep curate once; the others wait for the finished copy.
    with FileLock(str(source) + ".curation.lock"):
        return ensure_curated_corpus(source, build_judge(cur["judge"]), build_embedder(cur["embedding"]),
                                     settings, {part: {k: cur[part].get(k) for k in ("backend", "model", "path")}
                                                for part in ("judge", "embedding")})


def resolve_text_encoder_path(text_cfg, cache_dir: Path, seed: int) -> str:
    if text_cfg.source == "phantom":
        spec = PhantomTextEncoderSpec(**_plain(text_cfg.phantom), seed=seed)
        return str(ensure_phantom_text_encoder(spec, cache_dir))
    if text_cfg.source == "pretrained":
        return str(text_cfg.path)
    raise ValueError(f"text_encoder.source must be 'phantom' or 'pretrained', got {text_cfg.source!r}")


def build_model(model_cfg, image_cfg, text_cfg, text_path: str):
    image = build_image_encoder(image_cfg.name, image_cfg.get("weights_path"), image_cfg.get("image_size"))
    text = TextEncoder(text_path, pool=text_cfg.pool, freeze_layers=text_cfg.freeze_layers)
    if model_cfg.name == "convirt":
        return ConVIRT(image, text, proj_dim=model_cfg.proj_dim, proj_hidden=model_cfg.proj_hidden,
                       tau=model_cfg.tau, lam=model_cfg.lam)
    if model_cfg.name == "gloria":
        from .models.gloria import GLoRIA, word_piece_kinds  # local: keeps this edit inside build_model
        from .models.text_encoder import load_tokenizer

        kinds = word_piece_kinds(load_tokenizer(text_path), text.model.config.vocab_size)
        return GLoRIA(image, text, kinds, embed_dim=model_cfg.embed_dim,
                      image_size_model=model_cfg.image_size_model, last_n_layers=model_cfg.last_n_layers,
                      layer_agg=model_cfg.layer_agg, temp1=model_cfg.temp1, temp2=model_cfg.temp2,
                      temp3=model_cfg.temp3, local_weight=model_cfg.local_weight,
                      global_weight=model_cfg.global_weight, divide_by_temp2=model_cfg.divide_by_temp2)
    raise ValueError(f"unknown model {model_cfg.name!r}; expected one of ['convirt', 'gloria']")


def build_optimizer(opt_cfg, params):
    return instantiate(opt_cfg)(params)


def build_scheduler(sched_cfg, optimizer, total_steps: int):
    if sched_cfg is None:
        return None
    factory = instantiate(sched_cfg)
    if "num_training_steps" in inspect.signature(factory.func).parameters:
        return factory(optimizer, num_training_steps=total_steps)
    return factory(optimizer)


def build_benchmark_dir(bench_cfg, cache_dir: Path, key: str) -> Path:
    spec = _plain(bench_cfg)
    builder = spec.pop("builder", None)
    name = spec.pop("name", None)
    if builder == "phantom":
        if name != "chexpert":
            raise ValueError(f"{key}: no phantom twin named {name!r}; available: ['chexpert']")
        return ensure_twin(TwinSpec(name=name, **spec), cache_dir)
    if builder == "path":
        root = Path(spec["root"]).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"{key}.root: benchmark directory {root} not found")
        return root
    raise ValueError(f"{key}.builder must be 'phantom' or 'path', got {builder!r}")


def build_benchmark_root(bench_cfg, cache_dir: Path, key: str) -> Path:
    """Root directory of an evaluate.py benchmark config (`benchmark/*.yaml`): with `builder: phantom`
    the phantom twin of `reader` built from `twin` (cached by its hash), with `builder: path` the
    benchmark on disk at `root`."""
    builder, reader = bench_cfg.get("builder"), bench_cfg.get("reader")
    if builder == "phantom":
        twin = _plain(bench_cfg.get("twin") or {})
        try:
            return ensure_twin(TwinSpec(name=reader, **twin), cache_dir)
        except TypeError as e:
            raise ValueError(f"{key}.twin: {e}") from e
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from e
    if builder == "path":
        if not bench_cfg.get("root"):
            raise ValueError(f"{key}.root must name the benchmark directory when {key}.builder=path")
        root = Path(str(bench_cfg.root)).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"{key}.root: benchmark directory {root} not found")
        return root
    raise ValueError(f"{key}.builder must be 'phantom' or 'path', got {builder!r}")
