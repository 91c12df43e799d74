"""Count what the reliability tests did, for the summary printed after the run.

Tests add to :data:`FIGURES`; ``conftest.py`` prints the table at the end of
the session, so the figures in docs/reliability.md come from a real run.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

__all__ = ["FIGURES", "Figures"]


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


#: The counters of this test session.
FIGURES = Figures()
