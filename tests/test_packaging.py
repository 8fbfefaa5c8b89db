"""pyproject.toml declares what requirements.txt installs: `pip install .` elsewhere brings the same
packages, in ranges that admit the tested versions."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import REPO


def _requirements_txt() -> dict[str, Requirement]:
    out = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            out[canonicalize_name(req.name)] = req
    return out


def _pyproject() -> tuple[dict[str, Requirement], dict[str, Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}
    dev = {canonicalize_name(r.name): r for r in map(Requirement, project["optional-dependencies"]["dev"])}
    return runtime, dev


def test_both_lists_name_the_same_packages():
    runtime, dev = _pyproject()
    assert not runtime.keys() & dev.keys(), "a package is both a runtime and a dev dependency"
    tested = _requirements_txt()
    assert sorted(tested) == sorted(runtime.keys() | dev.keys())


def test_pinned_and_installed_versions_fall_in_the_declared_ranges():
    runtime, dev = _pyproject()
    declared = runtime | dev
    for name, req in _requirements_txt().items():
        for spec in req.specifier:
            if spec.operator in ("==", ">="):  # a pin or a floor of the tested set lies in the declared range
                assert declared[name].specifier.contains(spec.version, prereleases=True), (name, str(spec))
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        base = installed.split("+", 1)[0]  # torch's local build tag (+cu130, +cpu)
        assert declared[name].specifier.contains(base, prereleases=True), (name, installed)
