"""Static storages and Django's stock collectstatic, counted request by request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.template import Context, Template
from django.test import override_settings

from stowage.static import INDEX_NAME, StaticStorage
from stowage.static_manifest import ManifestStaticStorage
from tests.unit.recording import RecordingDriver

RECORDING = "tests.unit.recording:RecordingDriver"
LOGO = b"\x89PNG fake logo"


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "css").mkdir(parents=True)
    (root / "img").mkdir()
    (root / "img" / "logo.png").write_bytes(LOGO)
    (root / "css" / "site.css").write_text('body { background: url("../img/logo.png"); }\n')
    (root / "js").mkdir()
    (root / "js" / "app.js").write_text("console.log('app');\n")
    return root


def configure(sources: Path, backend: str, **options: Any) -> override_settings:
    return override_settings(
        STATICFILES_DIRS=[str(sources)],
        STATIC_URL="/static/",
        STORAGES={
            "default": {"BACKEND": "stowage.MemoryStorage"},
            "staticfiles": {
                "BACKEND": backend,
                "OPTIONS": {"driver": RECORDING, "namespace": "static-tests", **options},
            },
        },
    )


@pytest.fixture(autouse=True)
def empty_namespace() -> Iterator[None]:
    from stowage.drivers import memory

    memory._STORES.pop("static-tests", None)
    yield
    memory._STORES.pop("static-tests", None)


def collect(**kwargs: Any) -> tuple[Counter[str], list[str]]:
    """Run the stock collectstatic as a new process would; return its requests and puts."""
    storages._storages.pop("staticfiles", None)
    staticfiles_storage._setup()
    driver = staticfiles_storage.driver
    assert isinstance(driver, RecordingDriver)
    call_command("collectstatic", interactive=False, verbosity=0, **kwargs)
    staticfiles_storage.flush()
    counts = Counter(call[0] for call in driver.calls)
    counts["list"] = driver.list_calls
    # Beside these tests' files, the admin's and stowage's own (the upload widget's) are collected.
    apps = ("admin/", "stowage/")
    return counts, sorted(k for k in driver.names("put") if not k.startswith(apps))


def test_static_storage_defaults() -> None:
    storage = StaticStorage(driver=RECORDING)
    assert storage.options.querystring_auth is False
    assert storage.options.file_overwrite is True
    assert storage.static_options.upload_workers is None
    assert storage.upload_workers == 8  # a driver that waits on a network


@pytest.mark.parametrize("driver", ["local", "memory"])
def test_static_storage_uploads_in_save_where_threads_would_only_take_turns(
    driver: str, tmp_path: Path
) -> None:
    storage = StaticStorage(driver=driver, location=str(tmp_path))
    assert storage.upload_workers == 0
    storage.save("css/site.css", ContentFile(b"body {}"))
    assert storage._pool is None  # stored by save() itself, no thread started
    assert storage.exists("css/site.css")
    given = StaticStorage(driver=driver, location=str(tmp_path), upload_workers=4)
    assert given.upload_workers == 4


def test_first_run_uploads_each_file_once_with_one_listing(sources: Path) -> None:
    with configure(sources, "stowage.ManifestStaticStorage"):
        counts, puts = collect()
    originals = {"css/site.css", "img/logo.png", "js/app.js"}
    assert originals <= set(puts)
    assert "staticfiles.json" in puts
    assert INDEX_NAME in puts
    hashed = [p for p in puts if p not in originals | {"staticfiles.json", INDEX_NAME}]
    assert len(hashed) == 3
    assert counts["list"] == 1
    assert counts["head"] == 0
    assert counts["exists"] == 0


def test_no_op_rerun_uploads_nothing(sources: Path) -> None:
    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        counts, puts = collect()
    assert puts == []
    assert counts["list"] == 1
    assert counts["head"] == 0


def test_fresh_checkout_with_new_mtimes_uploads_nothing(sources: Path) -> None:
    import os

    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        for path in sources.rglob("*"):
            os.utime(path, (2_000_000_000, 2_000_000_000))
        _, puts = collect()
    assert puts == []


def test_changing_one_file_reuploads_it_and_its_dependents(sources: Path) -> None:
    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        (sources / "img" / "logo.png").write_bytes(LOGO + b" v2")
        _, puts = collect()
    assert "js/app.js" not in puts
    assert "css/site.css" not in puts
    changed = [p for p in puts if p not in ("staticfiles.json", INDEX_NAME)]
    assert "img/logo.png" in changed
    assert len([p for p in changed if p.startswith("img/logo.")]) == 2
    assert len([p for p in changed if p.startswith("css/site.")]) == 1
    assert "staticfiles.json" in puts


def test_headers_of_uploaded_files(sources: Path) -> None:
    with configure(sources, "stowage.ManifestStaticStorage", cache_control="no-cache"):
        collect()
        driver = staticfiles_storage.driver
        assert isinstance(driver, RecordingDriver)
        puts = {key: kwargs for name, key, kwargs in driver.calls if name == "put"}
    assert puts["css/site.css"]["content_type"] == "text/css"
    assert puts["css/site.css"]["cache_control"] == "no-cache"
    hashed_css = next(k for k in puts if k.startswith("css/site.") and k != "css/site.css")
    assert puts[hashed_css]["cache_control"] == "public, max-age=31536000, immutable"
    assert puts[hashed_css]["metadata"]["sha256"]
    assert puts["img/logo.png"]["content_type"] == "image/png"


def test_static_template_tag_resolves_hashed_names(sources: Path) -> None:
    with configure(sources, "stowage.ManifestStaticStorage", base_url="/static/"):
        collect()
        html = Template("{% load static %}{% static 'css/site.css' %}").render(Context())
        assert html.startswith("/static/css/site.")
        assert html != "/static/css/site.css"
        stored = html.removeprefix("/static/")
        with staticfiles_storage.open(stored) as handle:
            assert b"logo." in handle.read()


def test_manifest_strict_as_django(sources: Path) -> None:
    with configure(sources, "stowage.ManifestStaticStorage", base_url="/static/"):
        collect()
        with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
            staticfiles_storage.url("missing.css")


def test_dry_run_uploads_nothing(sources: Path) -> None:
    with configure(sources, "stowage.ManifestStaticStorage"):
        _, puts = collect(dry_run=True)
    assert puts == []


def test_clear_keeps_only_collected_files(sources: Path) -> None:
    with configure(sources, "stowage.StaticStorage"):
        collect()
        staticfiles_storage.save("stale/old.css", __import__("io").BytesIO(b"old"))
        staticfiles_storage.flush()
        _counts, puts = collect(clear=True)
        dirs, _files = staticfiles_storage.listdir("")
        assert sorted(dirs) == ["admin", "css", "img", "js", "stowage"]
        assert not staticfiles_storage.exists("stale/old.css")
        assert puts == [INDEX_NAME]


def test_no_post_process_still_uploads_after_flush(sources: Path) -> None:
    with configure(sources, "stowage.StaticStorage"):
        _, puts = collect(post_process=False)
    assert {"css/site.css", "img/logo.png", "js/app.js"} <= set(puts)


def test_a_failed_upload_is_reported(sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stowage.exceptions import ServiceError

    real_put = RecordingDriver.put

    def failing_put(self: RecordingDriver, key: str, stream: Any, **kwargs: Any) -> Any:
        if key.endswith("app.js"):
            raise ServiceError("the service refused app.js")
        return real_put(self, key, stream, **kwargs)

    monkeypatch.setattr(RecordingDriver, "put", failing_put)
    with (
        configure(sources, "stowage.StaticStorage"),
        pytest.raises(ServiceError, match="1 static file upload"),
    ):
        collect()


def test_local_driver_static_storage(tmp_path: Path, sources: Path) -> None:
    root = tmp_path / "collected"
    with override_settings(
        STATICFILES_DIRS=[str(sources)],
        STATIC_ROOT=str(root),
        STORAGES={
            "default": {"BACKEND": "stowage.MemoryStorage"},
            "staticfiles": {"BACKEND": "stowage.ManifestStaticStorage"},
        },
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        assert (root / "js" / "app.js").read_bytes() == b"console.log('app');\n"
        assert (root / "staticfiles.json").exists()
        assert staticfiles_storage.url("js/app.js").startswith("/static/js/app.")


def test_local_static_storage_without_static_root_says_so() -> None:
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(STATIC_ROOT=None):
        storage = StaticStorage()
        with pytest.raises(ImproperlyConfigured, match="location"):
            storage.exists("x")


def test_pickled_static_storage_works() -> None:
    import pickle

    storage = ManifestStaticStorage(driver=RECORDING, manifest_strict=False)
    assert storage.manifest_strict is False
    clone = pickle.loads(pickle.dumps(storage))
    assert clone.listdir("") == ([], [])
    assert not clone.exists("x.css")


# -- a collect with nothing changed skips Django's passes ----------------------------------


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the passes Django's HashedFilesMixin runs (each collect appends its count)."""
    from django.contrib.staticfiles.storage import HashedFilesMixin

    counts: list[int] = []
    original = HashedFilesMixin.post_process

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts.append(1)
        yield from original(self, *args, **kwargs)

    monkeypatch.setattr(HashedFilesMixin, "post_process", counted)
    return counts


def _hashed_css() -> str:
    return str(staticfiles_storage.stored_name("css/site.css"))


def test_no_op_rerun_skips_the_passes_and_serves_the_same_names(
    sources: Path, passes: list[int]
) -> None:
    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        first = _hashed_css()
        _, puts = collect()
        assert passes == [1]  # the second collect ran none
        assert puts == []
        driver = staticfiles_storage.driver
        assert isinstance(driver, RecordingDriver)
        assert sorted(driver.names("get")) == [INDEX_NAME, "staticfiles.json"]  # each once
        assert _hashed_css() == first
        with staticfiles_storage.open(first) as handle:
            assert b"logo." in handle.read()


def test_a_changed_file_runs_the_passes(sources: Path, passes: list[int]) -> None:
    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        first = _hashed_css()
        (sources / "img" / "logo.png").write_bytes(LOGO + b" v2")
        collect()
        assert passes == [1, 1]
        assert _hashed_css() != first  # the stylesheet names the new logo
        (sources / "js" / "new.js").write_text("console.log('new');\n")
        collect()  # a file added
        assert passes == [1, 1, 1]
        assert staticfiles_storage.stored_name("js/new.js") != "js/new.js"


def test_a_missing_hashed_file_runs_the_passes(sources: Path, passes: list[int]) -> None:
    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        hashed = _hashed_css()
        staticfiles_storage.delete(hashed)
        staticfiles_storage.flush()
        assert not staticfiles_storage.exists(hashed)
        _, puts = collect()
        assert passes == [1, 1]
        assert hashed in puts


def test_clear_runs_the_passes(sources: Path, passes: list[int]) -> None:
    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        first = _hashed_css()
        collect(clear=True)
        assert passes == [1, 1]
        assert _hashed_css() == first
        assert staticfiles_storage.exists(first)


@pytest.mark.parametrize(
    ("change", "value"),
    [("STATIC_URL", "/assets/"), ("skip_unchanged", False)],
)
def test_other_settings_run_the_passes(
    sources: Path, passes: list[int], change: str, value: Any
) -> None:
    options = {change: value} if change.islower() else {}
    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
    with (
        configure(sources, "stowage.ManifestStaticStorage", **options),
        override_settings(**({} if options else {change: value})),
    ):
        collect()
    assert passes == [1, 1]


def test_a_manifest_without_a_fingerprint_runs_the_passes(sources: Path, passes: list[int]) -> None:
    import json

    from stowage.static_manifest import SOURCES_KEY

    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        stored = json.loads(staticfiles_storage.read_manifest())
        assert len(stored.pop(SOURCES_KEY)) == 64
        staticfiles_storage.save("staticfiles.json", ContentFile(json.dumps(stored).encode()))
        staticfiles_storage.flush()
        collect()
        assert passes == [1, 1]
        assert SOURCES_KEY in json.loads(staticfiles_storage.read_manifest())  # written again


def test_a_storage_subclass_file_is_part_of_the_fingerprint(tmp_path: Path) -> None:
    import sys

    from stowage.static_manifest import _class_sources

    module = tmp_path / "my_static_storage.py"
    module.write_text(
        "from stowage import ManifestStaticStorage\n\n"
        "class MyStorage(ManifestStaticStorage):\n    pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        from my_static_storage import MyStorage  # type: ignore[import-not-found]

        assert list(_class_sources(ManifestStaticStorage)) == []
        assert list(_class_sources(MyStorage)) == [module.read_bytes()]
        module.unlink()
        assert list(_class_sources(MyStorage)) == [None]  # unreadable: nothing is skipped
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_static_storage", None)


def test_a_hashed_file_replaced_behind_the_storage_runs_the_passes(
    sources: Path, passes: list[int]
) -> None:
    import io

    with configure(sources, "stowage.ManifestStaticStorage"):
        collect()
        hashed = _hashed_css()
        staticfiles_storage.driver.put(hashed, io.BytesIO(b"body {}"), size=7)
        _, puts = collect()
        assert passes == [1, 1]
        assert hashed in puts
        with staticfiles_storage.open(hashed) as handle:
            assert b"logo." in handle.read()
