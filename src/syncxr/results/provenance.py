"""Which runs are the configuration the SynCXR paper published, and where each published value comes
from (issue 21, item 10).

A published number sits beside a measured one only when the run is that exact configuration: paper
mode (recipe=paper), ConVIRT or GLoRIA, real / syn / mix, the paper's ResNet-50, and for the
synthetic data the paper's default generation (Llama 3.1 70B writes the reports, RoentGen draws the
images, balanced sampling over the whole entity vocabulary, §3.2) and the plain union for mix (§4.2,
Table 1: "the direct combination of real and synthetic data"). An ablation row (entity ratio 0.25,
Meditron3, CXR-IRGen, a mixing share, another backbone) was not published and shows no number.

The real rows (MIMIC-CXR) were not retrained by the paper: §4.2 quotes them from MAVL (Phan et al.
2024b). A paper-mode study may skip training them (`paper.reuse_published_real=true`): such a job
writes QUOTED instead of metrics.json and the report shows the quoted row.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError
from ..data.dataset_format import write_json_atomic

QUOTED = "quoted.json"  # written by a data=real job of paper.reuse_published_real=true instead of training
PUBLISHED_MODELS = ("convirt", "gloria")  # Table 1's methods
PUBLISHED_DATA = ("real", "syn", "mix")  # Table 1's pre-training data
PAPER_CHOICES = {  # the groups of the published configuration, as recipe=paper selects them
    "image_encoder": "resnet50",  # paper §3.3 (the official codebases' ResNet-50)
    "llm": "llama31_70b",  # paper §3.2: Llama3.1-70B-Instruct writes the reports
    "imagegen": "roentgen",  # paper §3.2: RoentGen draws the images
    "sampling": "balanced",  # paper §3.2: balanced entity sampling
}
GENERATION_GROUPS = ("llm", "imagegen", "sampling")  # only the synthetic data depend on them
PAPER_ENTITY_RATIO = 1.0  # paper §4.3: Figure 3 varies the share; SynCXR uses every entity
SOURCES = {  # where the published value of each pre-training data comes from
    "real": "quoted by the paper (§4.2) from MAVL (Phan et al. 2024b): not retrained",
    "syn": "the paper's own SynCXR runs (Table 1)",
    "mix": "the paper's own runs on MIMIC-CXR + SynCXR (Table 1)",
}


def _choice(job, group: str) -> str | None:
    """The job's choice of a config group: its override, Hydra's record, or the section's `name`."""
    if group in job.overrides:
        return str(job.overrides[group])
    if job.choices.get(group):
        return str(job.choices[group])
    section = job.config.get(group)
    return str(section["name"]) if isinstance(section, dict) and section.get("name") else None


def _key(job, dotted: str):
    """A plain key of the job (its override, else its resolved config), or None."""
    if dotted in job.overrides:
        return job.overrides[dotted]
    node = job.config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _number(value) -> float | None:
    try:
        return None if value in (None, "null", "None") else float(value)
    except (TypeError, ValueError):
        return None


def unpublished(job) -> list[str]:
    """Why `job` is not a configuration the paper published (empty: it is). A group the job does not
    record is taken as recipe=paper sets it."""
    why = []
    if job.recipe != "paper":
        why.append(f"recipe={job.recipe}")
    if job.model not in PUBLISHED_MODELS:
        why.append(f"model={job.model}")
    if job.data not in PUBLISHED_DATA:
        return why + [f"data={job.data}"]
    groups = [g for g in PAPER_CHOICES if job.data != "real" or g not in GENERATION_GROUPS]
    why += [f"{g}={c}" for g in groups if (c := _choice(job, g)) not in (None, PAPER_CHOICES[g])]
    if job.data != "real":
        ratio = _number(_key(job, "generation.entity_ratio"))
        if ratio is not None and ratio != PAPER_ENTITY_RATIO:
            why.append(f"generation.entity_ratio={ratio:g}")
    if job.data == "mix" and _number(_key(job, "data.syn_fraction")) is not None:
        why.append(f"data.syn_fraction={_key(job, 'data.syn_fraction')}")
    return why


def quotes_published_real(reuse: bool, choices: dict) -> bool:
    """Whether a train.py job of `paper.reuse_published_real=reuse` (Hydra's group `choices`) quotes
    the published real row instead of training: paper mode, data=real. Refused outside paper mode,
    and for a real run the paper did not publish (another model or image encoder): nothing to quote."""
    if not reuse:
        return False
    if choices.get("recipe") != "paper":
        raise ConfigError(
            "paper.reuse_published_real=true applies to paper mode only (recipe=paper, e.g. "
            f"experiment=syncxr_paper); this run has recipe={choices.get('recipe')}: nothing was published for it"
        )
    if choices.get("data") != "real":
        return False
    model, encoder = choices.get("model"), choices.get("image_encoder")
    if model not in PUBLISHED_MODELS or encoder != PAPER_CHOICES["image_encoder"]:
        raise ConfigError(
            f"paper.reuse_published_real=true: the paper published no real-data row for model={model} "
            f"image_encoder={encoder} (only {', '.join(PUBLISHED_MODELS)} with resnet50); train it "
            "(paper.reuse_published_real=false)"
        )
    return True


def quote_published_real(reuse: bool, choices: dict, out_dir, seed: int, dry_run: bool) -> bool:
    """train.py's step: whether this job quotes the published real row instead of training
    (`quotes_published_real`); if so, its QUOTED file, or in a dry run its cost.json (no training,
    no generation: the GPU-hours the option saves)."""
    if not quotes_published_real(reuse, choices):
        return False
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if dry_run:
        cost = {"model": choices["model"], "data": "real", "seed": seed, "train_rows": 0, "train_gpu_h": 0.0}
        write_json_atomic(Path(out_dir) / "cost.json", cost | {"generation": [], "quoted": True})
    else:
        write_quoted(out_dir, choices["model"])
    return True


def write_quoted(out_dir, model: str) -> Path:
    """QUOTED in a job dir that did not train: the report shows the published row of `model`."""
    path = Path(out_dir) / QUOTED
    write_json_atomic(path, {"model": model, "data": "real", "source": SOURCES["real"]})
    return path
