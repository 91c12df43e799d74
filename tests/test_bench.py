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

import pytest

from bench.__main__ import DOCS, main, modules
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
    [["--quick"], ["s3"], ["--runs", "3"]],
    ids=["quick", "one-section", "few-runs"],
)
def test_only_a_full_run_may_write_the_docs_page(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main([*argv, "--output", str(DOCS)])
    assert raised.value.code == 2


def test_verdict_checks_ratio_and_memory_ceiling() -> None:
    assert verdict(Goal(4.0), 4.0) == (True, "")
    assert verdict(Goal(4.0), 3.9)[0] is False
    assert verdict(Goal(1.0, max_peak_mib=64), 2.0, 70.0) == (False, "peak RSS 70 MiB")
    assert verdict(Goal(1.0, max_peak_mib=64), 2.0, None)[0] is False
