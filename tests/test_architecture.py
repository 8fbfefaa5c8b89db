"""The package's shape: imports run from higher layers down only, no import cycles, small modules,
thin entry points, short functions with few parameters."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.helpers import REPO

SRC = REPO / "src"
# Sub-packages (and top-level modules) by layer, lowest first: a module may import from its own
# package and from lower layers, never from its layer's neighbours or from above.
LAYERS = [
    # the values of string-valued config keys: imports nothing, so that the entry points check a config
    # before torch is imported
    {"config_choices"},
    {"config", "config_targets", "data", "launch", "backends"},  # formats, readers, accelerator, backend contracts
    {"phantom"},  # the embedded world
    {"entities", "reports"},  # NER and vocabularies; LLM / image-to-report writers
    {"images", "models"},  # text-to-image backends and curation; the networks
    {"learned"},  # the phantom world's learned backends (report LMs, NER, text-to-image), trained here
    {"generation"},  # the SynCXR pipeline and the partially synthetic sets
    # config -> cached dataset directories; the benchmarks, one object each: reader, phantom twin, label maps
    # (above `data` and `phantom`, whose readers and renderer they use)
    # paper_prerequisites: what paper mode needs and what of it is missing (reads generation addresses)
    {"dataset_dirs", "benchmarks", "paper_prerequisites"},
    {"eval", "results", "analysis"},  # downstream suites; sweep reports; corpus analyses
    {"train"},  # the training job (trains, then runs an eval suite)
    {"config_validation"},  # the entry points' range checks (the choices: config_choices)
    {"entry_point"},  # how train.py, generate.py, ... refuse a bad config
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
ENTRY_POINTS = ("train.py", "generate.py", "evaluate.py", "analyze.py")
MAX_PARAMETERS = 8  # more travel together as a settings dataclass or a context object
MAX_FUNCTION_LINES = 60  # longer: split into named steps


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """syncxr modules `path` imports anywhere in its body (lazy imports included)."""
    mod = _module_name(path)
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            target, names = "", [a.name for a in node.names]
        else:
            continue
        for name in [target, *names]:
            if name.startswith("syncxr"):
                out.add(name)
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = defaultdict(set)
    for mod, path in modules.items():
        for name in _imports(path):
            while name and name not in modules:  # `from pkg import thing`: thing may be a name, not a module
                name = name.rpartition(".")[0]
            if name and name != mod and name != "syncxr":
                graph[mod].add(name)
    return {m: graph[m] for m in modules}


def _package(mod: str) -> str:
    return mod.split(".")[1] if mod.count(".") else mod


def test_imports_only_run_down_the_layers():
    upward = []
    for mod, targets in _graph().items():
        if mod == "syncxr":
            continue
        assert _package(mod) in RANK, f"{mod}: its package has no layer in LAYERS"
        for t in targets:
            a, b = _package(mod), _package(t)
            if a != b and RANK[b] >= RANK[a]:
                upward.append(f"{mod} -> {t}")
    assert not upward, "imports against the layering:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_modules_are_small_and_entry_points_thin():
    big = {str(p.relative_to(REPO)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not big, big
    for name in ENTRY_POINTS:
        lines = (REPO / name).read_text().splitlines()
        assert len(lines) < 40, (name, len(lines))


def test_the_layer_test_sees_an_upward_import(tmp_path, monkeypatch):
    """The checks above would catch a data -> generation import (guards the guard)."""
    fake = tmp_path / "src" / "syncxr"
    for rel in ("data/__init__.py", "generation/__init__.py", "generation/job.py", "__init__.py"):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text("")
    (fake / "data" / "reader.py").write_text("from ..generation.job import run\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["SRC"]), "SRC", tmp_path / "src")
    graph = _graph()
    assert graph["syncxr.data.reader"] == {"syncxr.generation.job"}
    try:
        test_imports_only_run_down_the_layers()
    except AssertionError as e:
        assert "syncxr.data.reader -> syncxr.generation.job" in str(e)
    else:
        raise AssertionError("an upward import went unnoticed")


def test_no_attribute_probes_on_the_projects_own_objects():
    """What code needs to know of a model or backend is declared (models/protocols.py, backends.py),
    never probed for; a probe on a third-party object says so on its line."""
    import re  # noqa: PLC0415

    probe = re.compile(r"\bhasattr\(|\bgetattr\(.*None\)")
    found = [
        f"{p.relative_to(REPO)}:{i}: {line.strip()}"
        for p in sorted(SRC.rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if probe.search(line) and "# third-party" not in line
    ]
    assert not found, "attribute probes:\n" + "\n".join(found)


def _parameter_count(args: ast.arguments, method: bool) -> int:
    """Parameters a caller may pass: self/cls of a method excluded, *args and **kwargs one each."""
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    bound = 1 if method and names and names[0] in ("self", "cls") else 0
    return len(names) - bound + (args.vararg is not None) + (args.kwarg is not None)


def _functions(tree: ast.AST, in_class: bool = False):
    """(function node, whether it is a method) for every def in `tree`, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node, in_class
        yield from _functions(node, isinstance(node, ast.ClassDef))


def _function_offenders(paths, root: Path = REPO) -> tuple[list[str], list[str]]:
    """`path:line name (count)` of the functions over MAX_PARAMETERS, and of those over MAX_FUNCTION_LINES."""
    too_many, too_long = [], []
    for path in paths:
        for fn, method in _functions(ast.parse(path.read_text())):
            where = f"{path.relative_to(root)}:{fn.lineno} {fn.name}"
            if (n := _parameter_count(fn.args, method)) > MAX_PARAMETERS:
                too_many.append(f"{where} ({n} parameters)")
            if (n := fn.end_lineno - fn.lineno + 1) > MAX_FUNCTION_LINES:
                too_long.append(f"{where} ({n} lines)")
    return too_many, too_long


def test_functions_are_short_and_take_few_parameters():
    too_many, too_long = _function_offenders([*sorted(SRC.rglob("*.py")), *(REPO / n for n in ENTRY_POINTS)])
    assert not too_many and not too_long, "\n".join(
        [f"over {MAX_PARAMETERS} parameters:", *too_many, f"over {MAX_FUNCTION_LINES} lines:", *too_long]
    )


def test_the_function_check_counts_parameters_and_lines(tmp_path):
    """Guards the guard: self is free, *args/**kwargs count one each, nested defs and methods are seen."""
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(
        "class A:\n    def ok(self, a, b, c, d, e, f, g, h):\n        pass\n"
        "    def many(self, a, b, c, d, e, f, g, *args, **kwargs):\n        pass\n"
        f"def outer():\n    def long():\n{body}\n"
    )
    too_many, too_long = _function_offenders([tmp_path / "m.py"], root=tmp_path)
    assert too_many == ["m.py:4 many (9 parameters)"]
    assert too_long == ["m.py:6 outer (62 lines)", "m.py:7 long (61 lines)"]
