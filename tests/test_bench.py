"""The benchmark runs end to end in quick mode, so it never rots.

Quick mode (tiny sizes, two runs per pair) starts every server the
benchmark uses and runs every section; the test checks the page and its
JSON record are complete and every row carries a computed goal verdict.
It never asserts a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import bench.__main__ as bench_main
from bench.__main__ import DOCS, main, modules, write_page
from bench._measure import Row, Section
from bench.goals import GOALS, Goal, verdict

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.once  # the benchmark's own Python runs it; `make test` runs it on one combination
def test_quick_run_writes_every_section_with_a_verdict_per_row(tmp_path: Path) -> None:
    before = DOCS.read_bytes() if DOCS.exists() else None
    page = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads(page.with_suffix(".json").read_text())
    names = [section["name"] for section in record["sections"]]
    assert names == modules([])
    assert {"s3", "azure", "gcs", "ftp", "sftp", "static", "sync", "async"} <= set(names)
    text = page.read_text()
    assert text.startswith("# Benchmarks (quick mode")
    for section in record["sections"]:
        assert f"## {section['title']}" in text
        assert section["rows"], f"{section['name']} has no rows"
        for row in section["rows"]:
            assert row["goal_key"] in GOALS, row
            assert row["goal"] == GOALS[row["goal_key"]].describe()
            assert isinstance(row["met"], bool), row
            assert row["met"] == (row["why_not"] == ""), row
            cells = next(
                line for line in text.splitlines() if line.startswith(f"| {row['label']} |")
            )
            assert cells.rstrip(" |").endswith("yes") or "**no**" in cells, cells
    # Quick mode never touches the published page.
    assert (DOCS.read_bytes() if DOCS.exists() else None) == before


@pytest.mark.parametrize(
    "argv",
    [["--quick"], ["s3"], ["--runs", "3"], ["--publish"], ["s3", "--publish", "--runs", "3"]],
    ids=["quick", "one-section", "few-runs", "publish-nothing", "publish-few-runs"],
)
def test_only_a_full_run_may_write_the_docs_page(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main([*argv, "--output", str(DOCS)])
    assert raised.value.code == 2


def test_verdict_checks_ratio_and_memory_ceiling() -> None:
    assert verdict(Goal(4.0), 4.0) == (True, "")
    assert verdict(Goal(4.0), 3.9) == (False, "ratio 3.90× below 4×")
    # A ratio just short of its goal keeps the digits that show it short.
    assert verdict(Goal(1.0), 0.9983) == (False, "ratio 0.998× below 1×")
    assert verdict(Goal(1.0, max_peak_mib=64), 2.0, 70.0) == (False, "peak RSS 70 MiB")
    assert verdict(Goal(1.0, max_peak_mib=64), 2.0, None)[0] is False


def _section(name: str, label: str, *, run: dict[str, Any] | None = None) -> Section:
    return Section(name, f"{name} title", [Row(label, "1 ms", "2 ms", 2.0)], "notes", run=run or {})


def test_publish_replaces_the_named_sections_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "benchmarks.md"
    earlier = {
        "date": "2026-01-02 03:04",
        "commit": "abc1234",
        "minutes": 12.0,
        "runs": 5,
        "machine": "x86_64",
        "versions": ["Python 3"],
    }
    write_page(
        page,
        False,
        [_section("s3", "old s3 row", run=earlier), _section("gcs", "gcs row", run=earlier)],
    )
    fresh = SimpleNamespace(TITLE="s3", run=lambda args: _section("s3", "new s3 row"))
    monkeypatch.setattr(bench_main, "importlib", SimpleNamespace(import_module=lambda name: fresh))
    main(["s3", "--publish", "--output", str(page)])
    record = json.loads(page.with_suffix(".json").read_text())
    assert [section["name"] for section in record["sections"]] == ["gcs", "s3"]  # modules' order
    gcs, s3 = record["sections"]
    assert gcs["run"] == earlier
    assert [row["label"] for row in s3["rows"]] == ["new s3 row"]
    assert s3["run"]["commit"] != "abc1234"
    assert s3["run"]["runs"] == 5
    text = page.read_text()
    assert "old s3 row" not in text
    assert "| new s3 row |" in text
    assert "| gcs row |" in text
    assert "Measured 2026-01-02 03:04 UTC at commit abc1234, in 12 minutes, 5 runs" in text
    assert "- Not yet measured in a published run: async, azure, ftp, sftp, static" in text
    assert "differ between runs" in text  # the new run's versions are not the fabricated ones


def test_a_failed_section_leaves_the_others_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "benchmarks.md"

    def broken(args: Any) -> Section:
        raise RuntimeError("the server did not start")

    fakes = {
        "bench.bench_gcs": SimpleNamespace(TITLE="gcs", run=broken),
        "bench.bench_s3": SimpleNamespace(TITLE="s3", run=lambda args: _section("s3", "s3 row")),
    }
    monkeypatch.setattr(bench_main, "importlib", SimpleNamespace(import_module=fakes.__getitem__))
    with pytest.raises(SystemExit, match=r'gcs failed.*ARGS="gcs --publish"'):
        main(["gcs", "s3", "--output", str(page)])
    record = json.loads(page.with_suffix(".json").read_text())
    assert [section["name"] for section in record["sections"]] == ["s3"]
    assert "Not yet measured in a published run: async, azure, ftp, gcs" in page.read_text()


@pytest.mark.parametrize(
    ("minutes", "said"),
    [(0.3, "less than a minute"), (1.2, "1 minute"), (83.4, "83 minutes")],
)
def test_a_section_says_how_long_its_run_took(minutes: float, said: str) -> None:
    run = {"date": "2026-01-02 03:04", "commit": "abc1234", "minutes": minutes, "runs": 5}
    section = Section("s3", "s3 title", [Row("row", "1 ms", "2 ms", 2.0)], "notes", run=run)
    assert f"at commit abc1234, in {said}, 5 runs per pair." in section.markdown()


def _list(keys: list[str], **query: str) -> tuple[list[str], list[str]]:
    """Page through a listing of the listing-only server as a client does; return all of it."""
    from xml.etree import ElementTree as ET

    from bench.listing_s3 import page

    found: list[str] = []
    prefixes: list[str] = []
    while True:
        root = ET.fromstring(page(keys, query))
        found += [e.text or "" for e in root.iterfind("{*}Contents/{*}Key")]
        prefixes += [e.text or "" for e in root.iterfind("{*}CommonPrefixes/{*}Prefix")]
        if root.findtext("{*}IsTruncated") != "true":
            return found, prefixes
        if query.get("list-type") == "2":
            query["continuation-token"] = root.findtext("{*}NextContinuationToken") or ""
        else:
            query["marker"] = root.findtext("{*}NextMarker") or ""


@pytest.mark.parametrize("version", [{}, {"list-type": "2"}], ids=["v1", "v2"])
def test_the_listing_server_pages_every_key_once(version: dict[str, str]) -> None:
    keys = sorted([f"many/{i:05d}" for i in range(2_500)] + ["other/a b", "top.txt"])
    assert _list(keys, prefix="many/", delimiter="/", **version) == (keys[:2_500], [])
    assert _list(keys, delimiter="/", **version) == (["top.txt"], ["many/", "other/"])
    encoded = _list(keys, prefix="other/", **{"encoding-type": "url"}, **version)
    assert encoded == (["other/a%20b"], [])
