"""The docs a clone carries stand on their own: every environment variable the code reads is
in docs/configuration.md, every API operation has its section in docs/api.md, and README
and docs/ link only to files (and headings) inside the repository."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
API = DOCS / "api.md"
# os.environ.get("X"), os.getenv("X"), os.environ["X"], os.environ.setdefault("X", ...),
# the settings helpers envbool/envint/envlist("X", ...), and dj_database_url's env="X".
ENV_READ = re.compile(
    r"""(?:\benv\w*\(\s*|os\.environ\.get\(\s*|os\.getenv\(\s*|os\.environ\.setdefault\(\s*"""
    r"""|os\.environ\[\s*|\benv=\s*)["']([A-Z][A-Z0-9_]+)["']"""
)
SHELL_ENV_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]+):?-")  # ${NAME:-default} in bin/
SKIPPED_DIRS = {".venv", "node_modules", "staticfiles", "media", "artifacts"}
LINK = re.compile(r"\]\(([^)\s]+)\)")
API_HEADING = re.compile(r"^### `([A-Z]+) (/api/v1/\S+)`$", re.MULTILINE)


def python_sources() -> Iterator[Path]:
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if not any(part.startswith(".") or part in SKIPPED_DIRS for part in parts[:-1]):
            yield path


def environment_reads() -> dict[str, Path]:
    """Every environment variable the repository's code reads, with one file reading it."""
    found: dict[str, Path] = {}
    for path in python_sources():
        for name in ENV_READ.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, path)
    for path in sorted((ROOT / "bin").iterdir()):
        for name in SHELL_ENV_READ.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, path)
    return found


def test_every_environment_variable_the_code_reads_is_in_configuration_md():
    reads = environment_reads()
    # The patterns are alive: these are read in three different ways.
    assert {"DEBUG", "DATABASE_URL", "REDIS_URL", "PYTHON"} <= set(reads), sorted(reads)
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONFIGURATION.read_text()))
    missing = {
        name: str(path.relative_to(ROOT)) for name, path in reads.items() if name not in documented
    }
    assert missing == {}, f"read by the code, not in docs/configuration.md: {missing}"


def api_operations() -> set[tuple[str, str]]:
    """(METHOD, /api/v1/path) for every view under /api/v1/, path parameters as <name>."""

    def walk(patterns: list, prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            else:
                yield route, pattern

    operations = set()
    for route, pattern in walk(get_resolver().url_patterns, "/"):
        if not route.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", route)
        view = pattern.callback.view_class
        for method in view.http_method_names:
            if method not in ("options", "head") and hasattr(view, method):
                operations.add((method.upper(), path))
    return operations


def test_every_api_operation_has_its_section_in_api_md():
    routed = api_operations()
    documented = set(API_HEADING.findall(API.read_text()))
    assert ("POST", "/api/v1/events") in routed, "the URLconf walk is stale"
    undocumented = sorted(f"{method} {path}" for method, path in routed - documented)
    assert undocumented == [], f"no '### `METHOD /path`' section in docs/api.md: {undocumented}"
    stale = sorted(f"{method} {path}" for method, path in documented - routed)
    assert stale == [], f"docs/api.md documents operations the URLconf does not have: {stale}"


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", prose, re.MULTILINE):
        anchor = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(anchor)
    return anchors


def test_readme_and_docs_link_only_inside_the_repository():
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = path.read_text()
        name = path.relative_to(ROOT)
        assert "../shared" not in text and "DESIGN.md" not in text, f"{name} cites outside"
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            assert resolved.is_relative_to(ROOT), f"{name} links outside: {target}"
            assert resolved.exists(), f"{name} links to a missing file: {target}"
            if anchor and resolved.suffix == ".md":
                anchors = heading_anchors(resolved.read_text())
                assert anchor in anchors, f"{name} links to a missing heading: {target}"
