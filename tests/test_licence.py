"""The project states its licence (MIT), and every package it runs on allows that."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

# Licences that let an MIT-licensed project depend on a package (and ship it alongside):
# the permissive ones; MPL-2.0 and LGPL, whose copyleft stays with their own files; and the
# Artistic License, which text-unidecode (prefect -> python-slugify) offers beside the GPL.
COMPATIBLE = re.compile(
    r"MIT|BSD|Apache|ISC|PSF|Python Software Foundation|Unlicense|Zope Public|ZPL|"
    r"MPL|Mozilla Public|LGPL|GNU Lesser|HPND|0BSD|CC0|Artistic",
    re.IGNORECASE,
)


def test_the_project_states_the_mit_licence() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    for pattern in project["license-files"]:  # ours and the bundled assets' own
        assert list(ROOT.glob(pattern)), pattern
    installed = metadata.metadata("coffeeshop")
    assert installed["License-Expression"] == "MIT", "reinstall: make setup"


def licence_of(name: str) -> str:
    """What a package's metadata says of its licence: the SPDX expression, the classifiers,
    else the free-text field (some projects paste their whole licence there)."""
    meta: Any = metadata.metadata(name)
    # `.get`: importlib_metadata's Message (what some installs hand back) raises KeyError
    # for a missing field where the standard library's gives None.
    if meta.get("License-Expression"):
        return str(meta["License-Expression"])
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return "; ".join(classifiers)
    return str(meta.get("License") or "").strip()


def runtime_closure() -> set[str]:
    """coffeeshop's runtime dependencies (no extras) and theirs, as installed here."""
    seen: set[str] = set()
    todo = ["coffeeshop"]
    while todo:
        name = todo.pop()
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            key = requirement.name.lower().replace("_", "-")
            if key in seen:
                continue
            try:
                metadata.metadata(key)
            except metadata.PackageNotFoundError:
                continue  # an optional dependency this platform does not install
            seen.add(key)
            todo.append(key)
    return seen


def test_every_runtime_dependency_allows_an_mit_project() -> None:
    closure = runtime_closure()
    assert {"sqlalchemy", "pymysql", "pymongo", "prefect", "fastapi"} <= closure
    unknown = {name: licence_of(name) for name in sorted(closure)}
    refused = {name: text[:80] for name, text in unknown.items() if not COMPATIBLE.search(text)}
    assert refused == {}, refused
