"""The docs a clone carries: every setting the settings module reads from the environment
is in README's configuration table, and README and docs/ link only inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_READ = re.compile(r"""(?:env\w*|os\.environ\.get|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']""")
LINK = re.compile(r"\]\(([^)#\s]+)")


def test_every_environment_setting_is_in_the_readme_table():
    read = set(ENV_READ.findall((ROOT / "config" / "settings.py").read_text()))
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert read, "no environment reads found: the pattern is stale"
    assert sorted(read - documented) == []


def test_readme_and_docs_link_only_inside_the_repository():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(path.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (path.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), f"{path.name} links outside: {target}"
            assert resolved.exists(), f"{path.name} links to a missing file: {target}"
