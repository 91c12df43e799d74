"""Keep the documentation true: run its code, check its tables, build the site.

Every fenced block in ``docs/`` is labelled. ``python`` blocks are executed,
page by page in order (one namespace per page, as a reader would paste
them); a block that assigns settings (``STORAGES = {...}``) is then checked
by building each storage it declares the way Django would, under
``override_settings``, which makes no network request. ``console``, ``sh``,
``bash`` and ``toml`` blocks are shown, not run.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.management import get_commands, load_command_class
from django.test import override_settings
from django.utils.module_loading import import_string

from stowage.checks import configured_storages
from stowage.config import StorageOptions
from stowage.drivers.base import Capability
from stowage.registry import BUILTIN_DRIVERS, DriverSpec, load_driver

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
#: Languages of blocks that are shown but not run.
SHOWN_ONLY = {"console", "bash", "sh", "toml"}
_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>.*)$")
_SNIPPET = re.compile(r'^--8<--\s+"(?P<path>[^"]+)"\s*$')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    language: str
    code: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> Iterator[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opened = _FENCE.match(lines[index])
        index += 1
        if opened is None:
            continue
        start, body = index, []
        while index < len(lines) and lines[index] != opened["fence"]:
            body.append(lines[index])
            index += 1
        index += 1
        language = opened["info"].strip().split(" ", 1)[0]
        yield Block(page, start, language, _expand_snippets("\n".join(body)))


def _expand_snippets(code: str) -> str:
    """Inline ``--8<-- "file"`` lines as pymdownx.snippets does (from docs/examples)."""

    def include(line: str) -> str:
        found = _SNIPPET.match(line.strip())
        return (EXAMPLES / found["path"]).read_text(encoding="utf-8") if found else line

    return "\n".join(include(line) for line in code.splitlines())


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _load_hooks() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("stowage_docs_hooks", DOCS / "_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


# -- the code blocks ------------------------------------------------------------------------


def test_every_block_says_its_language() -> None:
    unlabelled = [
        str(block)
        for page in _pages()
        for block in _blocks(page)
        if block.language not in SHOWN_ONLY | {"python"}
    ]
    assert unlabelled == [], f"label these blocks python, console, bash, sh or toml: {unlabelled}"


def _assigned_names(code: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(code).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _check_settings(block: Block, namespace: dict[str, Any], static_root: Path) -> None:
    """Check the settings a block assigns: each STORAGES entry must build."""
    assigned = {name for name in _assigned_names(block.code) if name.isupper()}
    if "INSTALLED_APPS" in assigned:
        assert "stowage" in namespace["INSTALLED_APPS"], f"{block}: stowage not installed"
    if "STORAGES" not in assigned:
        return
    overrides = {name: namespace[name] for name in assigned if name != "INSTALLED_APPS"}
    storages = namespace["STORAGES"]
    with override_settings(STATIC_ROOT=str(static_root), **overrides):
        for config in storages.values():
            import_string(config["BACKEND"])  # the class path is right
        built = {configured.alias: configured for configured in configured_storages()}
    for alias, config in storages.items():
        if not config["BACKEND"].startswith("stowage."):
            continue
        assert alias in built, f"{block}: STORAGES[{alias!r}] is not a stowage storage"
        error = built[alias].error
        assert error is None, f"{block}: STORAGES[{alias!r}] does not build: {error}"


@pytest.mark.parametrize(
    "page",
    [page for page in _pages() if any(b.language == "python" for b in _blocks(page))],
    ids=lambda page: str(page.relative_to(DOCS)),
)
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the worked example, importable as documented
    monkeypatch.chdir(tmp_path)
    # Models a page declares belong to the test project's app.
    slug = re.sub(r"\W", "_", str(page.relative_to(DOCS).with_suffix("")))
    module = types.ModuleType(f"tests.django_project.docs_{slug}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with mock.patch.dict(os.environ):
        for block in _blocks(page):
            if block.language != "python":
                continue
            try:
                exec(compile(block.code, str(block), "exec"), module.__dict__)
            except Exception as exc:
                raise AssertionError(f"{block}: {type(exc).__name__}: {exc}") from exc
            _check_settings(block, module.__dict__, tmp_path / "static")


# -- the generated tables --------------------------------------------------------------------


@pytest.mark.parametrize("backend", sorted(BUILTIN_DRIVERS))
def test_each_backend_has_a_page_with_its_generated_table(backend: str) -> None:
    page = DOCS / "backends" / f"{backend}.md"
    assert f"<!-- options: {backend} -->" in page.read_text(encoding="utf-8")
    assert f"backends/{backend}.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


@pytest.mark.parametrize("backend", sorted(BUILTIN_DRIVERS))
def test_option_table_lists_every_option(backend: str) -> None:
    driver = load_driver(backend)
    table = hooks.expand(f"<!-- options: {backend} -->")
    names = [f.name for f in dataclasses.fields(driver.options_class)]
    names += [f.name for f in dataclasses.fields(StorageOptions)]
    for name in names:
        assert f"<td><code>{name}</code>" in table, name
    assert table.count("<tr>") == len(set(names)) + 1  # the header row, then one per option
    for option, setting in driver.setting_fallbacks.items():
        assert f"setting <code>{setting}</code>" in table, option
    for alias in driver.option_aliases:
        assert f"<code>{alias}</code>" in table, alias


def test_option_table_shows_types_defaults_secrets_and_environment() -> None:
    table = hooks.expand("<!-- options: s3 -->")
    row = next(line for line in table.splitlines() if "<code>region_name</code>" in line)
    assert "<code>&quot;us-east-1&quot;</code>" in row
    assert (
        "setting <code>AWS_S3_REGION_NAME</code>, then env <code>AWS_DEFAULT_REGION</code>" in row
    )
    secret = next(line for line in table.splitlines() if "<code>secret_key</code>" in line)
    assert "<code>str | None</code>" in secret
    assert "Secret" in secret


def test_the_local_driver_owns_location() -> None:
    table = hooks.expand("<!-- options: local -->")
    assert table.count("<td><code>location</code>") == 1
    assert "defaults to MEDIA_ROOT" in table


def test_static_and_migration_tables() -> None:
    static = hooks.expand("<!-- options: static -->")
    for name in ("upload_workers", "hashed_cache_control", "manifest_strict"):
        assert f"<code>{name}</code>" in static
    migration = hooks.expand("<!-- migration: azure -->")
    assert "<code>AZURE_CONTAINER</code></td><td><code>azure_container</code>" in migration
    assert "<code>container</code></td><td><code>azure_container</code>" in migration
    assert "reads no django-storages setting" in hooks.expand("<!-- migration: memory -->")


def test_a_driver_module_that_does_not_exist_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(BUILTIN_DRIVERS, "tape", DriverSpec("stowage.drivers.tape:TapeDriver"))
    with pytest.raises(hooks.DocsError, match=r"'tape' backend: its driver module stowage\."):
        hooks.expand("<!-- options: tape -->")
    with pytest.raises(hooks.DocsError, match="No built-in backend is named 'floppy'"):
        hooks.expand("<!-- migration: floppy -->")


def test_the_hook_fails_the_build_naming_the_page() -> None:
    from mkdocs.exceptions import PluginError

    page = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="backends/floppy.md"))
    with pytest.raises(PluginError, match=r"backends/floppy\.md: No built-in backend"):
        hooks.on_page_markdown("<!-- options: floppy -->", page, None, None)


# -- hand-written tables that name code --------------------------------------------------------


def test_every_capability_is_documented() -> None:
    text = (DOCS / "custom-backend.md").read_text(encoding="utf-8")
    for capability in Capability:
        assert f"| `{capability.name}` |" in text, capability.name


def test_migration_class_paths_exist() -> None:
    text = (DOCS / "migrating.md").read_text(encoding="utf-8")
    paths = re.findall(r"`((?:storages\.backends|stowage)\.[\w.]+)`", text)
    assert len(paths) >= 10
    for path in paths:
        if path.startswith("stowage."):
            import_string(path)
        else:  # django-storages' modules import their SDKs (Dropbox…): only locate them
            module, _, name = path.rpartition(".")
            spec = importlib.util.find_spec(module)
            assert spec is not None, path
            assert spec.origin is not None
            assert f"class {name}(" in Path(spec.origin).read_text(encoding="utf-8"), path


def test_command_options_are_documented() -> None:
    text = (DOCS / "commands.md").read_text(encoding="utf-8")
    command = load_command_class(get_commands()["stowage"], "stowage")
    parser = command.create_parser("manage.py", "stowage")
    subparsers = next(a for a in parser._actions if a.dest == "subcommand")
    for name, subparser in subparsers.choices.items():  # type: ignore[union-attr]
        assert f"## {name}" in text or f"## cp and {name}" in text, name
        for action in subparser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help", "--verbosity"):
                    assert flag in text, f"{name} {flag}"


# -- the site -------------------------------------------------------------------------------------


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        raise AssertionError(
            "mkdocs is missing: pip install -r requirements/docs.txt (make docs installs it)"
        )
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    custom = (site / "custom-backend" / "index.html").read_text(encoding="utf-8")
    assert "AssetDriver" in custom  # the example file itself, included
    s3 = (site / "backends" / "s3" / "index.html").read_text(encoding="utf-8")
    assert "AWS_STORAGE_BUCKET_NAME" in s3
    assert "fonts.googleapis.com" not in s3  # offline: no third-party assets
