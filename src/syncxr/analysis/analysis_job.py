"""analyze.py's job: the corpus analyses of conf/analyze.yaml (curation of the real corpus, entity
long tail, Figure 4: real vs synthetic data along the first principal component of their features)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..config import build
from ..config_choices import ANALYSES
from ..data.dataset_format import is_complete, read_dataset
from ..data.durable import write_text_atomic
from ..dataset_dirs import build_curated_dir, build_dataset_dir
from ..entities.long_tail import analyse_long_tail, report_texts
from .feature_pca import Figure4Settings, figure4


def generated_datasets(cache_dir: Path) -> dict[str, Path]:
    """Finished SynCXR datasets in the cache, named by their generators and hash."""
    out = {}
    for d in sorted((cache_dir / "generated").glob("syncxr-*")):
        if is_complete(d):
            cfg = json.loads((d / "dataset.json").read_text()).get("config", {})
            llm, t2i = (cfg.get(k, {}).get("name", "?") for k in ("llm", "imagegen"))
            out[f"syn_{llm}_{t2i}_{d.name.removeprefix('syncxr-')[:6]}"] = d
    return out


def run_analysis(cfg: DictConfig, out_dir: Path) -> dict:
    unknown = set(cfg.analyses) - set(ANALYSES)
    if unknown:
        raise ValueError(f"analyses: unknown {sorted(unknown)}; expected a subset of {list(ANALYSES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "resolved_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    cache_dir = Path(cfg.paths.cache_dir).expanduser().resolve()
    corpus = build_dataset_dir(cfg.corpus, cache_dir, "corpus")
    summary: dict = {"corpus": str(corpus)}
    if "curation" in cfg.analyses:
        curated = build_curated_dir(corpus, cfg.curation)
        for name in ("curation.json", "contact_sheet.png"):
            shutil.copy(curated / name, out_dir / name)
        summary["curation"] = json.loads((curated / "curation.json").read_text())
        summary["curated_corpus"] = str(curated)
    if "long_tail" in cfg.analyses:
        others = {str(k): Path(str(v)).expanduser() for k, v in (cfg.compare or {}).items()}
        if cfg.compare_generated:
            others.update(generated_datasets(cache_dir))
        texts = {"corpus": report_texts(read_dataset(corpus)[0])}
        for name, d in others.items():
            texts[name] = report_texts(read_dataset(d)[0])
        stats = analyse_long_tail(texts, build(cfg.ner, "ner"), out_dir, progress=cfg.progress)
        summary["long_tail"] = stats.to_dict(orient="records")
    if "figure4" in cfg.analyses:
        summary["figure4"] = run_figure4(cfg, corpus, cache_dir, out_dir)
    write_text_atomic(out_dir / "analysis.json", json.dumps(summary, indent=2, default=str))
    return summary


def run_figure4(cfg: DictConfig, corpus: Path, cache_dir: Path, out_dir: Path) -> dict:
    """Figure 4 of the corpus and the `synthetic` dataset, with the `image_features` and
    `report_features` embedders (conf/analyze.yaml)."""
    dirs = {"real": corpus, "synthetic": build_dataset_dir(cfg.synthetic, cache_dir, "synthetic")}
    settings = Figure4Settings(**OmegaConf.to_container(cfg.figure4, resolve=True))
    embedders = {
        "images": build(cfg.image_features, "image_features"),
        "reports": build(cfg.report_features, "report_features"),
    }
    names = {"images": str(cfg.image_features.name), "reports": str(cfg.report_features.name)}
    return figure4(dirs, embedders, names, settings, out_dir, progress=cfg.progress)
