"""collectstatic: stowage's ManifestStaticStorage against django-storages' on one moto server.

Django's stock collectstatic command runs in this process against each
storage in turn, on the same generated tree of static files: a first run
into an empty bucket, then a no-op re-run with nothing changed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._measure import ratio, section

TITLE = "collectstatic (moto): stowage vs django-storages S3ManifestStaticStorage"


def _make_tree(root: Path, count: int) -> None:
    """Write ``count`` small static files: styles referencing images, scripts, images."""
    for index in range(count):
        folder = root / f"app{index % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        kind = index % 4
        if kind == 0:
            (folder / f"style{index}.css").write_text(
                f'.c{index} {{ background: url("../app{(index + 1) % 20}/img{index + 1}.png"); }}\n'
                * 20
            )
        elif kind == 1:
            (folder / f"img{index}.png").write_bytes(b"\x89PNG" + bytes([index % 256]) * 2048)
        else:
            (folder / f"script{index}.js").write_text(f"console.log({index});\n" * 40)


def _collect(backend: str, options: dict[str, Any], sources: Path) -> float:
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.core.files.storage import storages
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(
        STATICFILES_DIRS=[str(sources)],
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
            "staticfiles": {"BACKEND": backend, "OPTIONS": options},
        },
    ):
        storages._storages.pop("staticfiles", None)
        staticfiles_storage._setup()
        start = time.perf_counter()
        call_command("collectstatic", interactive=False, verbosity=0)
        flush = getattr(staticfiles_storage._wrapped, "flush", None)
        if flush is not None:
            flush()
        return time.perf_counter() - start


def run(args: argparse.Namespace) -> str:
    """Run collectstatic twice with each storage and return the Markdown section."""
    from tests.servers.moto import start_moto

    count = 300 if args.quick else 2000
    sources = Path(tempfile.mkdtemp(prefix="bench-static-src-"))
    _make_tree(sources, count)
    server = start_moto(Path(tempfile.mkdtemp(prefix="bench-static-logs-")))
    try:
        ours_options = {"driver": "s3", **server.options(server.create_bucket())}
        theirs_bucket = server.options(server.create_bucket())
        theirs_options = {
            "bucket_name": theirs_bucket["bucket_name"],
            "endpoint_url": theirs_bucket["endpoint_url"],
            "access_key": theirs_bucket["access_key"],
            "secret_key": theirs_bucket["secret_key"],
            "region_name": theirs_bucket["region_name"],
            "querystring_auth": False,
        }
        ours = "stowage.ManifestStaticStorage"
        theirs = "storages.backends.s3.S3ManifestStaticStorage"
        first_ours = _collect(ours, ours_options, sources)
        first_theirs = _collect(theirs, theirs_options, sources)
        again_ours = _collect(ours, ours_options, sources)
        again_theirs = _collect(theirs, theirs_options, sources)
    finally:
        server.stop()
    rows = [
        (
            f"first run, {count:,} files",
            f"{first_ours:.1f} s",
            f"{first_theirs:.1f} s",
            ratio(first_theirs, first_ours),
            "≥ 3×",
        ),
        (
            "no-op re-run",
            f"{again_ours:.2f} s",
            f"{again_theirs:.1f} s",
            ratio(again_theirs, again_ours),
            "≥ 20×",
        ),
    ]
    return section(
        "static",
        TITLE,
        rows,
        ("measure", "stowage", "django-storages", "ratio", "goal"),
        notes=(
            "Django's stock `collectstatic`, in-process, same generated tree (a quarter "
            "stylesheets referencing images), same moto server, a bucket each. stowage lists "
            "the bucket once, skips unchanged files by content hash and uploads on 8 threads; "
            "django-storages asks the service per file."
        ),
    )
