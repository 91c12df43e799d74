"""Generate the option tables of the documentation from the code, at build time.

MkDocs loads this module as a hook (``hooks:`` in ``mkdocs.yml``). Before a
page's Markdown is rendered, each placeholder comment in it is replaced:

``<!-- options: s3 -->``
    every option of the ``s3`` backend: the driver's ``options_class``, then
    the adapter's :class:`stowage.config.StorageOptions` (less any the driver
    declares itself), with type, default, fallback setting or environment
    variable, django-storages alias and meaning.
``<!-- options: static -->``
    the options the static storages add (``StaticOptions``, ``ManifestOptions``).
``<!-- migration: s3 -->``
    every django-storages global setting and OPTIONS spelling of the
    backend (:mod:`stowage.django_storages`): the stowage option each
    becomes, or why it is refused and what to use instead.
``<!-- conformance: conformance -->``
    what the conformance kit checked and found refused for each fixtures
    class, from ``docs/conformance-table.json`` (written from a test run).
``<!-- reliability: concurrency -->``
    one table the reliability suite counted (its name in lower case, words
    joined by ``-``), from ``docs/reliability-figures.json`` (published from
    a complete passing run); ``<!-- reliability: run -->`` says what run.

The tables are read from the dataclasses, so the pages cannot drift from the
code. A placeholder naming a backend whose driver cannot be imported (a
module not written yet, an extra not installed) fails the build and says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "DocsError",
    "conformance_table",
    "expand",
    "migration_table",
    "on_page_markdown",
    "options_table",
    "reliability_figures",
    "static_options_table",
]

_PLACEHOLDER = re.compile(r"<!--\s*(options|migration|conformance|reliability):\s*([\w-]+)\s*-->")
_KiB = 1024
#: A ``literal`` in an option's doc, as docstrings write it.
_LITERAL = re.compile(r"``(.+?)``")


class DocsError(Exception):
    """Report a placeholder that cannot be filled in."""


def _ensure_settings() -> None:
    # Importing the storages reads no setting, but some Django modules want
    # settings to exist; a docs build has no project.
    from django.conf import settings

    if not settings.configured:
        settings.configure()


def _driver_class(name: str) -> type[Any]:
    from stowage.exceptions import ConfigurationError
    from stowage.registry import BUILTIN_DRIVERS, load_driver

    if name not in BUILTIN_DRIVERS:
        known = ", ".join(sorted(BUILTIN_DRIVERS))
        raise DocsError(f"No built-in backend is named {name!r}; known: {known}.")
    try:
        return load_driver(name)
    except ConfigurationError as exc:
        module = BUILTIN_DRIVERS[name].path.partition(":")[0]
        raise DocsError(
            f"Cannot document the {name!r} backend: its driver module {module} cannot be "
            f"imported ({exc}). Write the driver (or install its extra) before building the "
            "docs; its option table is generated from the driver's options_class."
        ) from exc


def _storage_class(name: str) -> type[Any]:
    from stowage import backends

    for cls_name in backends.__all__:
        cls = getattr(backends, cls_name)
        if getattr(cls, "driver_name", None) == name:
            return typing.cast(type[Any], cls)
    raise DocsError(f"No storage class in stowage.backends uses the {name!r} driver.")


# -- formatting --------------------------------------------------------------------------


def format_type(annotation: Any) -> str:
    """Return a short, readable spelling of a type annotation."""
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "Any"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(format_type(arm) for arm in args)
    if origin is typing.Literal:
        return " | ".join(_format_value(choice) for choice in args)
    if origin is not None:
        inner = ", ".join("..." if arg is Ellipsis else format_type(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return str(getattr(annotation, "__name__", annotation))


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int) and value >= _KiB and value % _KiB == 0:
        for unit, size in (("GiB", _KiB**3), ("MiB", _KiB**2), ("KiB", _KiB)):
            if value % size == 0:
                return f"{value} ({value // size} {unit})"
    if isinstance(value, dt.timedelta):
        return f"timedelta(seconds={int(value.total_seconds())})"
    if isinstance(value, tuple):
        inner = ", ".join(_format_value(item) for item in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    return repr(value)


def format_default(f: dataclasses.Field[Any]) -> str:
    """Return the default of an option field, or "required" when it has none."""
    if f.default is not dataclasses.MISSING:
        return _format_value(f.default)
    factory = f.default_factory
    if factory is not dataclasses.MISSING:
        return _format_value(factory())
    return "required"


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """Return an HTML table: Markdown tables cannot hold ``|`` inside code cells."""
    lines = ["<table>", "<thead><tr>"]
    lines += [f"<th>{html.escape(cell)}</th>" for cell in head]
    lines.append("</tr></thead>")
    lines.append("<tbody>")
    for row in rows:
        lines.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


# -- the tables ------------------------------------------------------------------------------


def _fields(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], Any]]:
    """Return the options of ``cls``, the driver's own first, then those of its bases."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    own = {
        name
        for klass in cls.__mro__
        if klass.__module__ == cls.__module__
        for name in vars(klass).get("__annotations__", {})
    }
    ordered = [f for f in fields if f.name in own] + [f for f in fields if f.name not in own]
    return [(f, hints[f.name]) for f in ordered]


def _option_rows(
    classes: Iterable[type[Any]],
    fallbacks: Mapping[str, tuple[str, ...]],
    aliases: Mapping[str, list[str]],
) -> list[list[str]]:
    rows: list[list[str]] = []
    seen: set[str] = set()
    for cls in classes:
        for f, hint in _fields(cls):
            if f.name in seen:
                continue  # declared by the driver, which owns it
            seen.add(f.name)
            name = _code(f.name)
            if aliases.get(f.name):
                spelled = ", ".join(_code(alias) for alias in aliases[f.name])
                name += f"<br><small>also {spelled}</small>"
            sources = []
            for setting in fallbacks.get(f.name, ()):
                sources.append(f"setting {_code(setting)}")
            if f.metadata.get("env"):
                sources.append(f"env {_code(f.metadata['env'])}")
            meaning = _LITERAL.sub(r"<code>\1</code>", html.escape(f.metadata.get("doc", "")))
            if f.metadata.get("secret"):
                meaning += " <em>Secret: never shown in repr, deconstruct() or messages.</em>"
            rows.append(
                [
                    name,
                    _code(format_type(hint)),
                    _code(format_default(f)),
                    ", then ".join(sources) or "—",
                    meaning,
                ]
            )
    return rows


_OPTION_HEAD = ("Option", "Type", "Default", "Fallback", "Meaning")


def options_table(backend: str) -> str:
    """Return the table of every option the ``backend`` storage accepts."""
    from stowage.config import StorageOptions
    from stowage.django_storages import names_for

    driver = _driver_class(backend)
    storage = _storage_class(backend)
    compat = names_for(driver)
    fallbacks = {
        **compat.setting_candidates,
        **{option: (setting,) for option, setting in storage.setting_fallbacks.items()},
    }
    aliases: dict[str, list[str]] = {}
    for alias, target in sorted(compat.option_aliases.items()):
        aliases.setdefault(target, []).append(alias)
    rows = _option_rows((driver.options_class, StorageOptions), fallbacks, aliases)
    return _table(_OPTION_HEAD, rows)


def static_options_table() -> str:
    """Return the table of the options the static storages add to their driver's."""
    from stowage.static import StaticOptions
    from stowage.static_manifest import ManifestOptions

    rows = _option_rows((StaticOptions, ManifestOptions), {}, {})
    return _table(_OPTION_HEAD, rows)


def _harmless(refused: Any) -> str:
    values = ", ".join(_code(repr(value)) for value in (None, *refused.harmless))
    return f" (accepted, changing nothing, when it is {values})"


def migration_table(backend: str) -> str:
    """Return what stowage does with each of django-storages' names for ``backend``.

    One row per global setting and ``OPTIONS`` key: the stowage option it
    feeds, or why it is refused and what to use instead.
    """
    from stowage.django_storages import names_for

    driver = _driver_class(backend)
    storage = _storage_class(backend)
    compat = names_for(driver)
    own = {h.option for h in compat.honoured if h.stowage_only}
    candidates = {
        **{o: s for o, s in compat.setting_candidates.items() if o not in own},
        **{option: (setting,) for option, setting in storage.setting_fallbacks.items()},
    }
    rows: list[list[str]] = []
    for option, settings in sorted(candidates.items(), key=lambda item: item[1]):
        for rank, setting in enumerate(settings):
            where = "global setting, read when OPTIONS lacks the option"
            if rank:
                earlier = " and ".join(_code(name) for name in settings[:rank])
                where = f"global setting, read when OPTIONS and {earlier} lack the option"
            refusal = next((h for h in compat.honoured if h.option == option), None)
            if refusal is not None and refusal.refused_type is not None:
                kind = refusal.refused_type.__name__
                where += f"; a {kind} value is refused: {html.escape(refusal.refusal)}"
            rows.append([_code(setting), _code(option), where])
    rows += [
        [_code(alias), _code(option), "OPTIONS key, accepted as a synonym"]
        for alias, option in sorted(compat.option_aliases.items())
    ]
    for refused in sorted(compat.refused, key=lambda r: r.option or r.setting or ""):
        instead = html.escape(refused.instead)
        if refused.option:
            rows.append(
                [
                    _code(refused.option),
                    "refused",
                    f"OPTIONS key, raises ImproperlyConfigured{_harmless(refused)}: {instead}",
                ]
            )
        if refused.setting:
            rows.append(
                [
                    _code(refused.setting),
                    "not read",
                    "global setting, reported by check <code>stowage.W006</code>"
                    f"{_harmless(refused)}: {instead}",
                ]
            )
    if not rows:
        return (
            f"<p>The {html.escape(backend)} backend reads no django-storages setting: "
            "give every option in OPTIONS.</p>"
        )
    return _table(("django-storages", "stowage", "what happens"), rows)


def conformance_table(name: str) -> str:
    """Return, per fixtures class, what the conformance kit checked and what it found refused.

    Read from ``docs/<name>-table.json`` (``conformance-table.json``), which
    ``python -m stowage.testing`` writes from a test run's dump.
    """
    import json
    from pathlib import Path

    source = Path(__file__).resolve().parent / f"{name}-table.json"
    if not source.is_file():
        raise DocsError(
            f"{source.name} is missing: run the driver tests, then "
            f"python -m stowage.testing test-artifacts/conformance.json docs/{source.name}"
        )
    backends: dict[str, dict[str, dict[str, list[str]]]] = json.loads(source.read_text())[
        "backends"
    ]

    def cell(behaviours: dict[str, dict[str, list[str]]], outcome: str) -> str:
        items = []
        for behaviour, outcomes in behaviours.items():
            if outcome in outcomes:
                details = "; ".join(outcomes[outcome])
                items.append(html.escape(behaviour + (f" ({details})" if details else "")))
        return "<br>".join(items) or "—"

    rows = []
    for backend, behaviours in backends.items():
        module, _, cls = backend.partition("::")
        where = module.rsplit(".", 1)[-1]
        rows.append(
            [
                f"{_code(cls)}<br><small>{html.escape(where)}</small>",
                cell(behaviours, "checked"),
                cell(behaviours, "refused"),
            ]
        )
    return _table(("Fixtures class", "Checked", "Refused, as documented"), rows)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def reliability_figures(name: str) -> str:
    """Return one table the reliability suite counted, or (``run``) what run counted them.

    Read from ``docs/reliability-figures.json``, which
    ``python -m tests.reliability._figures`` publishes from a complete passing run.
    """
    import json
    from pathlib import Path

    source = Path(__file__).resolve().parent / "reliability-figures.json"
    if not source.is_file():
        raise DocsError(
            f"{source.name} is missing: run tests/reliability, then python -m "
            f"tests.reliability._figures test-artifacts/{source.name} docs/{source.name}"
        )
    data = json.loads(source.read_text())
    if name == "run":
        run = data["run"]
        return (
            f"{run['tests']} tests, every module of `tests/reliability/`, all passed, "
            f"in {run['seconds']} s"
        )
    tables = {_slug(table["name"]): table for table in data["tables"]}
    if name not in tables:
        raise DocsError(f"no reliability table {name!r}; recorded: {', '.join(sorted(tables))}")
    table = tables[name]
    rows = [
        [html.escape(backend), *(str(cells.get(column, 0)) for column in table["columns"])]
        for backend, cells in table["rows"].items()
    ]
    return _table(("", *table["columns"]), rows)


_GENERATORS: dict[str, Callable[[str], str]] = {
    "options": lambda name: static_options_table() if name == "static" else options_table(name),
    "migration": migration_table,
    "conformance": conformance_table,
    "reliability": reliability_figures,
}


def expand(markdown: str) -> str:
    """Replace every placeholder in ``markdown`` with its generated table."""
    _ensure_settings()
    return _PLACEHOLDER.sub(lambda m: _GENERATORS[m.group(1)](m.group(2)), markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill in the placeholders of one page (the MkDocs hook)."""
    from mkdocs.exceptions import PluginError

    try:
        return expand(markdown)
    except DocsError as exc:
        raise PluginError(f"{page.file.src_uri}: {exc}") from exc
