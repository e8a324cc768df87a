"""The product never imports demo: demo/ is tooling of a checkout, left out of the installed
package, so a product module importing it would break an installed Gleaner. The product is
what pyproject.toml ships (`[tool.setuptools.packages.find] include`)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _product_packages() -> list[str]:
    """Top-level packages the wheel ships that exist in this checkout ("feedback*" ->
    "feedback")."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    names = {pattern.split(".")[0].rstrip("*") for pattern in patterns}
    return sorted(name for name in names if (ROOT / name / "__init__.py").exists())


def _imports_demo(source: str) -> list[int]:
    """Line numbers of `import demo...` and `from demo... import ...` in `source`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "demo" or name.startswith("demo.") for name in names):
            lines.append(node.lineno)
    return lines


def test_the_import_check_finds_every_form_of_importing_demo() -> None:
    source = (
        "import demo\nimport os, demo.traffic\nfrom demo import reviewers\n"
        "from demo.ingestion import send_simulated_traffic\n"
        "import demonstration\nfrom .demo import x\nfrom feedback import demo\n"
    )
    assert _imports_demo(source) == [1, 2, 3, 4]


def test_demo_is_not_shipped_with_the_product() -> None:
    packages = _product_packages()
    assert {"config", "feedback", "review", "exports"} <= set(packages)
    assert "demo" not in packages


def test_no_product_module_imports_demo() -> None:
    checked, offenders = 0, []
    for package in _product_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            checked += 1
            for line in _imports_demo(path.read_text()):
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert checked > 0, "no product modules found: the package list is stale"
    assert offenders == [], f"product modules import demo: {', '.join(offenders)}"
