"""Count what the reliability tests did, record it, and publish it for the docs.

Tests add to :data:`FIGURES`; at the end of the session ``conftest.py``
prints the tables and writes them, with how the run went, to
``test-artifacts/reliability-figures.json``. A complete passing run is
published for docs/reliability.md with::

    python -m tests.reliability._figures test-artifacts/reliability-figures.json \
        docs/reliability-figures.json

which refuses a partial run (``-k``, a subset of the files) or one with
failures, so the page only ever shows what a whole run counted.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["FIGURES", "Figures", "publish", "write"]

#: Every test module of the suite: a run must include them all to be published.
MODULES = (
    "test_concurrency.py",
    "test_faults_azure.py",
    "test_faults_ftp.py",
    "test_faults_gcs.py",
    "test_faults_s3.py",
    "test_faults_sftp.py",
    "test_faults_webdav.py",
    "test_secrets.py",
)


class Figures:
    """Thread-safe counters keyed by (table, backend, column)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, table: str, backend: str, column: str, count: int = 1) -> None:
        """Add ``count`` to one cell."""
        with self._lock:
            self._counts[table, backend, column] += count

    def tables(self) -> Iterator[tuple[str, list[str], dict[str, dict[str, int]]]]:
        """Yield each table's name, columns and rows (backend -> column -> count)."""
        with self._lock:
            counts = dict(self._counts)
        for table in sorted({key[0] for key in counts}):
            rows: dict[str, dict[str, int]] = {}
            columns: list[str] = []
            for (name, backend, column), value in sorted(counts.items()):
                if name != table:
                    continue
                rows.setdefault(backend, {})[column] = value
                if column not in columns:
                    columns.append(column)
            yield table, columns, rows


def write(figures: Figures, path: Path, run: dict[str, Any]) -> None:
    """Write the tables of ``figures`` and the facts of the ``run`` as JSON to ``path``."""
    tables = [
        {"name": name, "columns": columns, "rows": rows} for name, columns, rows in figures.tables()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run, "tables": tables}, indent=1, sort_keys=True) + "\n")


def publish(source: Path, target: Path) -> None:
    """Copy a recorded run to ``target`` if it is complete and passed; raise ValueError if not."""
    data = json.loads(source.read_text())
    run = data["run"]
    problems = []
    if run.get("failed") or run.get("errors"):
        problems.append(f"{run.get('failed', 0)} failed, {run.get('errors', 0)} errors")
    if run.get("deselected") or run.get("keyword") or run.get("markers"):
        problems.append("tests were deselected (-k or -m)")
    missing = sorted(set(MODULES) - set(run.get("modules", [])))
    if missing:
        problems.append(f"modules not run: {', '.join(missing)}")
    if problems:
        raise ValueError(f"{source} is not a complete passing run: " + "; ".join(problems))
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


#: The counters of this test session.
FIGURES = Figures()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: python -m {__spec__.name if __spec__ else 'figures'} SOURCE TARGET")
    try:
        publish(Path(sys.argv[1]), Path(sys.argv[2]))
    except ValueError as exc:
        sys.exit(str(exc))
    print(f"wrote {sys.argv[2]}")
