"""The paper-mode fidelity table: every setting paper mode makes, its value and its source, generated
from the config files (never typed).

    python -m syncxr.results.paper_fidelity            # writes docs/paper_mode_settings.md
    python -m syncxr.results.paper_fidelity --check    # exit 1 when it is stale or a key has no source

The paper-mode keys are every key (and every defaults-list choice) set by the files in PAPER_FILES:
what recipe=paper (experiment=syncxr_paper) and the files it selects set, with the presets they
choose. A key's source is a comment that follows the convention of docs/paper-mode.md (SOURCE): on the
key's line, in the block of comment lines right above it, or, failing both, on the mapping that holds
it. Each key's value is read from the composed config (train.yaml with experiment=syncxr_paper and
model=convirt or model=gloria), interpolations unresolved.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ..config import LABEL_KEYS, PHANTOM_KEY, TRANSPORT_KEYS

REPO = Path(__file__).resolve().parents[3]
CONF = REPO / "conf"
TABLE = REPO / "docs" / "paper_mode_settings.md"
MODELS = ("convirt", "gloria")
# A source comment: `paper §4.1`, `paper A.2`, `paper Table 1`, `paper footnote 7`, `official <repo>/<file>`
# or `paper silent: <why>`.
SOURCE = re.compile(r"\bpaper (§|A\.\d|table|figure|fig\.|footnote|silent)|\bofficial \w", re.IGNORECASE)
# (file under conf/, the package its keys land in, the models it applies to). The files recipe=paper
# sets or selects, the presets it chooses (and the base files they build on), the schedulers the
# paper-mode pre-training files choose, and the experiment presets that name paper mode.
PAPER_FILES = (
    ("recipe/paper.yaml", "", MODELS),
    ("experiment/syncxr_paper.yaml", "", MODELS),
    ("experiment/convirt_paper.yaml", "", ("convirt",)),
    ("experiment/gloria_paper.yaml", "", ("gloria",)),
    ("pretraining/convirt.yaml", "", ("convirt",)),
    ("pretraining/gloria.yaml", "", ("gloria",)),
    ("scheduler/constant.yaml", "scheduler", ("convirt",)),
    ("scheduler/plateau.yaml", "scheduler", ("gloria",)),
    ("eval/paper.yaml", "", MODELS),
    ("generation/paper.yaml", "generation", MODELS),
    ("curation/paper.yaml", "curation", MODELS),
    ("llm/llama31_70b.yaml", "llm", MODELS),
    ("llm/base/openai_server.yaml", "llm", MODELS),
    ("ner/rate_ner.yaml", "ner", MODELS),
    ("imagegen/roentgen.yaml", "imagegen", MODELS),
    ("imagegen/base/diffusers.yaml", "imagegen", MODELS),
    ("image_encoder/resnet50.yaml", "image_encoder", MODELS),
    ("text_encoder/bioclinicalbert.yaml", "text_encoder", MODELS),
    ("dataset/mimic_cxr.yaml", "real_corpus", MODELS),
    ("corpus/mimic_cxr.yaml", "corpus", MODELS),
)


# Keys that name the implementation or say how to reach or drive it, not what the experiment is
# (syncxr.config's label and transport keys, Hydra's target keys, a dataset's reader): listed in the
# table, exempt from the source rule.
PLUMBING = frozenset({"_target_", "_partial_", "builder", PHANTOM_KEY, *LABEL_KEYS, *TRANSPORT_KEYS})
PLUMBING_SOURCE = "plumbing: names the implementation or how to reach it (no experimental setting)"


@dataclass(frozen=True)
class Setting:
    file: str  # under conf/
    line: int  # 1-based
    key: str  # the dotted key in the composed config, or `defaults: <entry>`
    values: dict  # model -> the composed value (as text)
    source: str  # the source comment ("" when none)


def _comment_after(text: str) -> str:
    """The comment in `text` (what follows a `#` that starts a YAML comment), or ""."""
    m = re.search(r"(?:^|\s)#(.*)$", text)
    return m.group(1).strip() if m else ""


def _comment_above(lines: list[str], index: int) -> str:
    """The block of whole-line comments right above line `index` (0-based), joined."""
    block = []
    i = index - 1
    while i >= 0 and lines[i].lstrip().startswith("#"):
        block.insert(0, lines[i].lstrip()[1:].strip())
        i -= 1
    return " ".join(block)


def _own_comment(lines: list[str], key: yaml.Node, value: yaml.Node) -> str:
    """The comment on the key's line (after its value when that is on the line), else the one above."""
    block = isinstance(value, (yaml.MappingNode, yaml.SequenceNode)) and value.flow_style is not True
    if block:
        same = lines[key.start_mark.line][key.end_mark.column :]
    else:
        same = lines[value.end_mark.line][value.end_mark.column :]
    comment = _comment_after(same)
    return comment if SOURCE.search(comment) else _comment_above(lines, key.start_mark.line) or comment


def _keys(lines: list[str], node: yaml.MappingNode, prefix: str, inherited: str):
    """(key path, 1-based line, own-or-inherited comment) of every leaf under `node`."""
    for key, value in node.value:
        path = f"{prefix}.{key.value}" if prefix else str(key.value)
        comment = _own_comment(lines, key, value)
        source = comment if SOURCE.search(comment) else inherited
        if isinstance(value, yaml.MappingNode) and value.value:
            yield from _keys(lines, value, path, source)
        else:
            yield path, key.start_mark.line + 1, source


def _defaults(lines: list[str], node: yaml.SequenceNode):
    """(`defaults: <entry>`, 1-based line, comment) of each defaults-list entry but _self_."""
    for item in node.value:
        if isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                comment = _own_comment(lines, key, value)
                text = value.value if isinstance(value, yaml.ScalarNode) else yaml.serialize(value).strip()
                yield f"defaults: {key.value}: {text}", key.start_mark.line + 1, comment
        elif item.value != "_self_":
            yield f"defaults: {item.value}", item.start_mark.line + 1, _comment_after(lines[item.start_mark.line])


def file_settings(rel: str, package: str, conf: Path = CONF) -> list[tuple[str, int, str]]:
    """(key, line, source comment or "") of every setting `conf`/`rel` makes, keys in `package`."""
    text = (conf / rel).read_text()
    lines = text.splitlines()
    root = yaml.compose(text)
    out = []
    if root is None:
        return out
    for key, value in root.value:
        if key.value == "defaults":
            out += [(k, n, c if SOURCE.search(c) else "") for k, n, c in _defaults(lines, value)]
            continue
        comment = _own_comment(lines, key, value)
        sub = f"{package}.{key.value}" if package else str(key.value)
        if isinstance(value, yaml.MappingNode) and value.value:
            out += list(_keys(lines, value, sub, comment if SOURCE.search(comment) else ""))
        else:
            out.append((sub, key.start_mark.line + 1, comment if SOURCE.search(comment) else ""))
    return out


def compose_paper(model: str):
    """train.yaml with experiment=syncxr_paper and `model`, as a plain container (unresolved)."""
    from hydra import compose, initialize_config_dir  # noqa: PLC0415

    import syncxr.config  # noqa: F401, PLC0415  (its resolvers)

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=syncxr_paper", f"model={model}"])
    return OmegaConf.to_container(cfg, resolve=False)


def _value(container: dict, key: str) -> str:
    node = container
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return "(not in the composed config)"
        node = node[part]
    return _text(node)


def _text(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return str(value)


def settings() -> list[Setting]:
    composed = {m: compose_paper(m) for m in MODELS}
    out = []
    for rel, package, models in PAPER_FILES:
        for key, line, source in file_settings(rel, package):
            if key.startswith("defaults: "):
                values = {m: key.split(": ", 2)[-1] for m in models}
            else:
                values = {m: _value(composed[m], key) for m in models}
            if not source and key.rsplit(".", 1)[-1] in PLUMBING:
                source = PLUMBING_SOURCE
            out.append(Setting(rel, line, key, values, source))
    return out


def unsourced(rows: list[Setting]) -> list[str]:
    return [f"conf/{s.file}:{s.line} {s.key}" for s in rows if not s.source]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: list[Setting]) -> str:
    lines = [
        "# Paper mode, setting by setting",
        "",
        "Generated by `python -m syncxr.results.paper_fidelity` from the config files; do not edit by hand",
        "(tests/results/test_paper_fidelity.py fails when it is stale or a setting has no source). Back to",
        "[paper mode](paper-mode.md).",
        "",
        "Every key and defaults-list choice that paper mode (`experiment=syncxr_paper`, `recipe=paper`) sets",
        "or selects, with its value in the composed config (`train.yaml` with `experiment=syncxr_paper` and",
        "`model=convirt` / `model=gloria`; interpolations as written) and its source comment: `paper §...`",
        "(the SynCXR paper), `official <repo>/<file>` (the codebase the paper names) or `paper silent: <why>`.",
        "A value that differs from the file's own was overridden by a file later in the composition.",
        "",
    ]
    for rel, _, models in PAPER_FILES:
        file_rows = [s for s in rows if s.file == rel]
        if not file_rows:
            continue
        lines += [f"## conf/{rel}", "", f"Applies to: {', '.join(f'model={m}' for m in models)}.", ""]
        lines += ["| key | value | source |", "| --- | --- | --- |"]
        for s in file_rows:
            distinct = set(s.values.values())
            value = next(iter(distinct)) if len(distinct) == 1 else "; ".join(f"{m}: {v}" for m, v in s.values.items())
            source = s.source or "**MISSING**"
            lines.append(f"| `{_cell(s.key)}` | `{_cell(value)}` | {_cell(source)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when the table is stale or a key has no source")
    args = parser.parse_args(argv)
    rows = settings()
    text = render(rows)
    missing = unsourced(rows)
    if args.check:
        stale = not TABLE.is_file() or TABLE.read_text() != text
        for m in missing:
            print(f"no source comment: {m}", file=sys.stderr)
        if stale:
            print(f"{TABLE} is stale: python -m syncxr.results.paper_fidelity", file=sys.stderr)
        return 1 if stale or missing else 0
    TABLE.write_text(text)
    print(f"wrote {TABLE} ({len(rows)} settings, {len(missing)} without a source)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
