"""What paper mode (recipe=paper, `paper_mode: true`) needs and what of it is missing: every pretrained
component and every piece of real data the published study used must be given, because a missing one
would otherwise run as a silent stand-in (random ResNet-50 weights, a model at a placeholder path, a
server at localhost, the phantom oracle in place of MedVersa).

One question, asked by two callers: the entry points refuse a paper-mode run that lacks any of them
(`require`, one error naming every missing key and what to pass), and a dry run lists them all in
`cost.md` and on the console instead (`prerequisite_table`). Which ones a run needs follows from what
it composes: the image and text towers of every training job, the real corpus (MIMIC-CXR) of real,
mix and partially synthetic sets, the real corpus's curation (MLLM and RAD-DINO) where it is curated,
the image-to-report model of real image + synthetic report, and the generation backends of a SynCXR
dataset that is not made yet.

A value counts as given when it is set: a hub id or an existing local path (a path that does not
exist is reported), a server URL from its environment variable or the config (not the localhost
fallback of the presets). An explicit `image_encoder.random_init=true` trains the image tower from
scratch on purpose (tests, the tiny paper sweep)."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .config import ConfigError, is_phantom_preset, plain
from .generation.generation_job import generated_dir, generation_config

# `${oc.env:VAR,fallback}`: a value that falls back when VAR is unset.
ENV_FALLBACK = re.compile(r"^\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)(,.*)?\}$")
LOCAL_PATH = ("/", "./", "../", "~")  # how a local path begins (anything else may be a hub id)


@dataclass(frozen=True)
class Prerequisite:
    """One missing prerequisite: the config `key` that gives it, `what` the paper used there, `how`
    to give it and the `problem` with the value it has now."""

    key: str
    what: str
    how: str
    problem: str

    def line(self) -> str:
        return f"{self.key}: {self.problem}; the paper used {self.what}: pass {self.how}"


def _raw(section: DictConfig, key: str):
    """The value of `key` in `section` as written (interpolations unresolved)."""
    return OmegaConf.to_container(section, resolve=False).get(key)


def _path_problem(value) -> str | None:
    """Why a model path or hub id does not count as given (None: it does)."""
    if value is None or value == "???":
        return "not given"
    text = str(value)
    if text.startswith(LOCAL_PATH) and not Path(text).expanduser().exists():
        return f"no such path: {text}"
    return None


def _path(section: DictConfig | None, key: str, what: str, how: str) -> list[Prerequisite]:
    if section is None:
        return []
    problem = _path_problem(OmegaConf.select(section, "path", default=None))
    return [Prerequisite(f"{key}.path", what, how, problem)] if problem else []


def _server(client: DictConfig, key: str, what: str, how: str) -> list[Prerequisite]:
    """A served model's URL: given by base_urls, by base_url set in the config, or by the environment
    variable its preset reads (unset, the preset's localhost fallback is no server of the paper's)."""
    if client.get("base_urls"):
        return []
    raw = _raw(client, "base_url")
    env = ENV_FALLBACK.match(str(raw)) if isinstance(raw, str) else None
    if raw is None or (env and env.group(1) not in os.environ):
        unset = f"{env.group(1)} is not set" if env else "base_url is null"
        return [Prerequisite(f"{key}.base_url", what, how, f"no server given ({unset})")]
    return []


def _phantom(section: DictConfig, key: str, what: str, how: str) -> list[Prerequisite]:
    if is_phantom_preset(section, key):
        name = section.get("name", "?")
        return [Prerequisite(key, what, how, f"{key}={name} is a phantom-world stand-in")]
    return []


def declared_missing(section: DictConfig, key: str, what: str) -> list[Prerequisite]:
    """What a preset declares it lacks: each key of its `requires` that is null (beyond `path`, which
    _path checks) and its `refused` reason (a release that cannot run here, e.g. CXR-IRGen)."""
    spec = plain(section)
    out = [
        Prerequisite(f"{key}.{k}", what, f"{key}.{k}=<a local path or hub id>", "not given")
        for k in spec.get("requires") or []
        if k != "path" and spec.get(k) is None
    ]
    if spec.get("refused"):
        out.append(Prerequisite(key, what, f"another {key} preset", str(spec["refused"])))
    return out


def _t2i(imagegen: DictConfig, what: str) -> list[Prerequisite]:
    """The text-to-image model: not a phantom stand-in, its weights given, nothing it declares missing."""
    found = _phantom(imagegen, "imagegen", what, "imagegen=roentgen")
    if found:
        return found
    if imagegen.get("refused"):
        return declared_missing(imagegen, "imagegen", what)
    how = f"imagegen.path=/models/{imagegen.get('name', 'roentgen')} (its weights: a local path or hub id)"
    return _path(imagegen, "imagegen", what, how) + declared_missing(imagegen, "imagegen", what)


def _llm(cfg: DictConfig) -> list[Prerequisite]:
    llm, what = cfg.llm, "Llama 3.1 70B Instruct (§3.2; Figure 3 also Llama 3.1 8B, Meditron3 8B/70B)"
    found = _phantom(llm, "llm", what, "llm=llama31_70b (or another published LLM)")
    if found:
        return found
    if llm.get("backend") == "openai":
        return _server(llm, "llm", what, "SYNCXR_LLM_URL=http://node:8000/v1 (or llm.base_urls=[...])")
    return _path(llm, "llm", what, "llm.path=/models/<the LLM>")


def _curation(cfg: DictConfig) -> list[Prerequisite]:
    """The MLLM judge and RAD-DINO of §3.1 (the real corpus's curation and the synthetic images')."""
    cur = cfg.curation
    found = _phantom(cur, "curation", "the MLLM's six questions and RAD-DINO (§3.1)", "curation=paper")
    if found:
        return found
    judge = cur.judge
    client = judge.get("client")
    out = []
    if client is not None and judge.get("backend") == "openai":
        how = "SYNCXR_MLLM_URL=http://node:8001/v1 (or curation.judge.client.base_urls=[...])"
        out += _server(client, "curation.judge.client", "InternVL2-26B, served (§3.1)", how)
    rad_dino = "RAD-DINO (microsoft/rad-dino, §3.1)"
    return out + _path(cur.embedding, "curation.embedding", rad_dino, "curation.embedding.path=/models/rad-dino")


def _mimic(spec: dict, key: str) -> list[Prerequisite]:
    """A MIMIC-CXR dataset spec (resolved): its root must be an existing directory."""
    if spec.get("builder") != "mimic_cxr":
        return []
    what, how = "MIMIC-CXR-JPG with its reports", f"MIMIC_CXR_ROOT=/data/mimic-cxr-jpg (or {key}.root=...)"
    root = spec.get("root")
    if root is None:
        return [Prerequisite(f"{key}.root", what, how, "not given (MIMIC_CXR_ROOT is not set)")]
    if not Path(str(root)).expanduser().is_dir():
        return [Prerequisite(f"{key}.root", what, how, f"no such directory: {root}")]
    return []


def generation_prerequisites(cfg: DictConfig, cache_dir: Path) -> list[Prerequisite]:
    """What making the SynCXR dataset of `cfg.generation` needs (nothing when it exists already)."""
    if not cfg.get("paper_mode", False):
        return []
    if (generated_dir(generation_config(cfg.generation), cache_dir) / "manifest.parquet").is_file():
        return []
    ner = cfg.ner
    rate = "RaTE-NER (Angelakeke/RaTE-NER-Deberta, §3.2)"
    out = _phantom(ner, "ner", rate, "ner=rate_ner") or _path(ner, "ner", rate, "ner.path=/models/RaTE-NER-Deberta")
    out += _llm(cfg)
    t2i = "RoentGen (§3.2; Figure 3 also CXR-IRGen, LLM-CXR)"
    out += _t2i(cfg.imagegen, t2i)
    out += _curation(cfg)
    return out + _mimic(plain(cfg.corpus), "corpus")


def _image_encoder(cfg: DictConfig) -> list[Prerequisite]:
    enc = cfg.image_encoder
    what = f"ImageNet-pretrained {enc.arch} weights (ConVIRT and GLoRIA start from ImageNet)"
    how = "image_encoder.weights_path=/models/resnet50-0676ba61.pth (a torchvision state dict)"
    if enc.get("random_init", False):
        return []
    if enc.get("weights_path") is None:
        return [Prerequisite("image_encoder.weights_path", what, how + " or image_encoder.random_init=true", "null")]
    problem = _path_problem(enc.weights_path)
    return [Prerequisite("image_encoder.weights_path", what, how, problem)] if problem else []


def _text_encoder(cfg: DictConfig) -> list[Prerequisite]:
    what, how = "BioClinicalBERT (emilyalsentzer/Bio_ClinicalBERT)", "text_encoder.path=/models/Bio_ClinicalBERT"
    if "path" not in cfg.text_encoder:
        return [Prerequisite("text_encoder", what, "text_encoder=bioclinicalbert", "the phantom BERT is a stand-in")]
    return _path(cfg.text_encoder, "text_encoder", what, how)


def _partial(cfg: DictConfig, spec: dict) -> list[Prerequisite]:
    """A partially synthetic set (Table 4b): its real part, and the model that replaces the other."""
    out = _mimic(spec["real"], "real_corpus")
    if spec["kind"] == "real_image_syn_report":
        i2r = cfg.data.syn.i2r
        what = "MedVersa (hyzhou/MedVersa, §4.3) writing a report per real image"
        found = _phantom(i2r, "data.syn.i2r", what, "i2r@data.syn.i2r=<an image-to-report preset> with its weights")
        if not found and "client" in i2r:
            how = "SYNCXR_I2R_URL=http://node:8000/v1 (or data.syn.i2r.client.base_urls=[...])"
            found = _server(i2r.client, "data.syn.i2r.client", what, how)
        elif not found:
            found = _path(i2r, "data.syn.i2r", what, "data.syn.i2r.path=/models/MedVersa")
            found += declared_missing(i2r, "data.syn.i2r", what)
        return out + found
    return out + _t2i(cfg.imagegen, "RoentGen drawing each real report's IMPRESSION (§4.3)")


def training_prerequisites(cfg: DictConfig, cache_dir: Path) -> list[Prerequisite]:
    """Everything a paper-mode training job needs: its towers, its data and, for a SynCXR dataset
    not made yet, what generate.py needs to make it. Empty outside paper mode."""
    if not cfg.get("paper_mode", False):
        return []
    out = _image_encoder(cfg) + _text_encoder(cfg)
    data = plain(cfg.data)
    real, syn = data.get("real"), data.get("syn")
    if real:
        out += _mimic(real, "real_corpus")
    if syn and syn.get("builder") == "generated":
        out += generation_prerequisites(cfg, cache_dir)
    elif syn and syn.get("builder") == "partial":
        out += _partial(cfg, syn)
    if real and data.get("curate_real"):  # the real corpus is curated before it is trained on (§3.1)
        out += _curation(cfg)
    return _unique(out)


def _unique(items: list[Prerequisite]) -> list[Prerequisite]:
    seen: dict[str, Prerequisite] = {}
    for p in items:
        seen.setdefault(p.key, p)
    return list(seen.values())


def as_records(missing: list[Prerequisite]) -> list[dict]:
    return [asdict(p) for p in missing]


def require(missing: list[Prerequisite]) -> None:
    """Refuses a paper-mode run that lacks any prerequisite, naming every one and what to pass."""
    if missing:
        lines = "\n".join(f"  {p.line()}" for p in missing)
        raise ConfigError(
            f"paper mode (recipe=paper) needs every pretrained component and dataset the paper used; "
            f"{len(missing)} missing (dry_run=true lists them without stopping):\n{lines}"
        )


def prerequisite_table(records: list[dict], jobs: list[int] | None = None) -> str:
    """A markdown table of missing prerequisites (records as `as_records` writes them); `jobs`: how
    many jobs of a sweep lack each record's."""
    header = "| key | problem | what the paper used | how to give it |" + (" jobs |" if jobs else "")
    rows = [header, "|" + " --- |" * (5 if jobs else 4)]
    for i, r in enumerate(records):
        cells = [f"`{r['key']}`", r["problem"], r["what"], f"`{r['how']}`"] + ([str(jobs[i])] if jobs else [])
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
