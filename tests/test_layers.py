"""The apps depend one way only (README, "The flow"): each package may import the packages
listed for it and no other of ours. `demo` is in no list: the product never imports it, and
the installed package leaves it out (demo/ is tooling of a checkout: a product module that
imported it would break an installed Gleaner).

config is the wiring (settings, urls, the Celery app) and may import every app; no app
imports config except its small shared pieces named in CONFIG_SHARED.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {
    "core",
    "tenancy",
    "feedback",
    "review",
    "exports",
    "playground",
    "signals",
    "config",
    "demo",
}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "tenancy": {"core"},
    "feedback": {"core", "tenancy"},
    "review": {"core", "tenancy", "feedback"},
    "exports": {"core", "tenancy", "feedback", "review"},
    "playground": {"core", "tenancy", "feedback"},
    "signals": {"core", "tenancy", "feedback"},
    "config": {"core", "tenancy", "feedback", "review", "exports", "playground", "signals"},
}
# Modules of config that apps may use: the OpenAPI helpers, the Celery app, the API's parsers.
CONFIG_SHARED = {"config.schema", "config.celery", "config.parsers"}


def imports_of(source: str) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in `source`, at any depth (lazy imports
    inside functions count: they are dependencies all the same)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_imports_of_finds_every_form():
    source = (
        "import demo\nimport os, review.models\nfrom feedback import services\n"
        "def f():\n    from exports.models import ExportJob\n"
        "from .local import x\n"
    )
    assert imports_of(source) == [
        (1, "demo"),
        (2, "os"),
        (2, "review.models"),
        (3, "feedback"),
        (5, "exports.models"),
    ]


def test_every_shipped_package_has_its_place_and_demo_is_not_shipped():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = {pattern.split(".")[0].rstrip("*") for pattern in patterns}
    assert shipped == set(ALLOWED)
    assert "demo" not in shipped


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_the_package_imports_only_what_it_builds_on(package):
    offenders = []
    paths = sorted((ROOT / package).rglob("*.py"))
    assert paths, f"{package}/ has no modules: the table is stale"
    for path in paths:
        if "migrations" in path.parts:
            continue  # historical model states name whatever they named then
        for line, module in imports_of(path.read_text()):
            top = module.split(".")[0]
            if top not in OURS or top == package:
                continue
            if top == "config" and any(
                module == shared or module.startswith(shared + ".") for shared in CONFIG_SHARED
            ):
                continue
            if top not in ALLOWED[package]:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == [], "\n".join(offenders)
