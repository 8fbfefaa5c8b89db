"""W&B through accelerate's trackers: rank 0 only, resolved config, stable ids across requeues."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml

from .jobs import parse_overrides

NOT_CONFIGURED = (
    "W&B is not configured: run `wandb login` (or set WANDB_API_KEY), or log offline with "
    "logger.mode=offline (WANDB_MODE=offline) and upload later with `wandb sync <dir>/wandb/offline-run-*`, "
    "or choose logger=none."
)


def run_id(out_dir: str | Path) -> str:
    """The same output dir always maps to the same W&B run: a requeued job continues its run."""
    return hashlib.sha1(str(Path(out_dir).resolve()).encode()).hexdigest()[:16]


def check_configured(mode: str | None) -> str:
    """The effective mode; fails with instructions when online logging has no credentials."""
    mode = mode or os.environ.get("WANDB_MODE") or "online"
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.mode must be online, offline or disabled, got {mode!r}")
    if mode == "online":
        import wandb

        if not (os.environ.get("WANDB_API_KEY") or wandb.api.api_key):
            raise RuntimeError(NOT_CONFIGURED)
    return mode


def init_kwargs(logger_cfg, out_dir: Path, name: str, group: str, job_type: str) -> dict:
    mode = check_configured(logger_cfg.get("mode"))
    wandb_dir = Path(logger_cfg.get("dir") or out_dir)
    wandb_dir.mkdir(parents=True, exist_ok=True)
    return {
        "wandb": {
            "entity": logger_cfg.get("entity"),
            "name": name,
            "group": group,
            "job_type": job_type,
            "id": run_id(out_dir),
            "resume": "allow",
            "dir": str(wandb_dir),
            "mode": mode,
            "tags": list(logger_cfg.get("tags") or []),
        }
    }


def _value(text: str):
    """An override's value as YAML reads it (0.5 -> float, syn -> str), the text if it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def tracker_config(resolved: dict, out_dir: str | Path) -> dict:
    """The config a W&B training run carries: the run's choices at the top (data, model, seed and every
    override of its job, e.g. sampling, llm, generation.entity_ratio as flat keys) so the W&B UI
    groups and compares runs by them, and the whole resolved config under `cfg`."""
    values = {
        "data": (resolved.get("data") or {}).get("name"),
        "model": (resolved.get("model") or {}).get("name"),
        "seed": resolved.get("seed"),
    }
    overrides = Path(out_dir) / ".hydra" / "overrides.yaml"  # Hydra writes it before the job starts
    if overrides.is_file():
        values.update({k: _value(v) for k, v in parse_overrides(yaml.safe_load(overrides.read_text())).items()})
    return {**values, "cfg": resolved}


def log_sweep_report(
    sweep_dir: str | Path, logger_cfg, results, plots: list[Path], report_md: Path, tables: dict | None = None
) -> str:
    """One W&B run per sweep (job_type=report, group = sweep name) holding the results table, the
    paper-shaped tables (`sweep/tables/<name>`), the report text and the plots; its id is stable, so
    re-writing a report updates the same run."""
    import wandb

    sweep_dir = Path(sweep_dir)
    # The id comes from <sweep>/report; the wandb/ folder goes in the sweep dir itself.
    cfg = {**logger_cfg, "dir": logger_cfg.get("dir") or str(sweep_dir)}
    with TrackedRun(cfg, sweep_dir / "report", f"report-{sweep_dir.name}", sweep_dir.name, "report", {}) as tracker:
        # W&B tables want plain scalars: NaN stays, lists and dicts become text.
        table = results.map(lambda v: v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
        paper = {f"sweep/tables/{k}": wandb.Table(dataframe=t.astype(str)) for k, t in (tables or {}).items()}
        tracker.log(
            {},
            objects={
                "sweep/results": wandb.Table(dataframe=table),
                **paper,
                "sweep/report": wandb.Html(f"<pre>{report_md.read_text()}</pre>"),
                **{f"sweep/plots/{p.stem}": wandb.Image(str(p)) for p in plots},
            },
        )
    return tracker.run.id


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float, bool)):
            out[f"{prefix}{k}"] = v
    return out


class TrackedRun:
    """A W&B run for generate.py / evaluate.py (train.py logs through accelerate): numbers are
    flattened to `a/b/c` keys, PNGs become images; `logger=none` makes every call a no-op."""

    def __init__(self, logger_cfg, out_dir: str | Path, name: str, group: str, job_type: str, config: dict):
        self.run = None
        if logger_cfg is None or logger_cfg.get("name") != "wandb":
            return
        import wandb

        kw = init_kwargs(logger_cfg, Path(out_dir), name, group, job_type)["wandb"]
        self.run = wandb.init(project=logger_cfg.get("project"), config=config, **kw)

    def log(self, numbers: dict, images: list[Path] = (), objects: dict | None = None) -> None:
        """`numbers` flattened, existing PNGs as `images/<stem>`, `objects` (W&B tables, HTML) as they are."""
        if self.run is None:
            return
        import wandb

        self.run.log(
            {
                **_flatten(numbers),
                **{f"images/{p.stem}": wandb.Image(str(p)) for p in images if Path(p).is_file()},
                **(objects or {}),
            }
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.run is not None:
            self.run.finish(exit_code=1 if exc[0] else 0)  # always finished, marked failed on an error
        return False
