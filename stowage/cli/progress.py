"""Show a transfer's progress: files, bytes, rate and time left.

On a terminal the bar comes from ``rich`` when it is installed, else from
``tqdm``, else it is a line printed every few seconds; when the output is not
a terminal (a log, a test) it is always the plain line. Every reporter is
thread-safe: the copies run on a pool of threads.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from stowage.cli.listing import format_size

__all__ = ["PlainProgress", "Progress", "RichProgress", "TqdmProgress", "make_progress"]


def _optional(module: str) -> Any:
    """Return ``module`` or None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}"


class Progress:
    """Count files and bytes done out of a total; show nothing (the quiet reporter).

    Subclasses draw the counts. ``discount()`` takes a file out of the totals
    when it turns out to need no copy after all.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files_total = self.bytes_total = 0
        self.files_done = self.bytes_done = 0
        self.started = time.monotonic()

    def start(self, files: int, size: int) -> None:
        """Begin with ``files`` files of ``size`` bytes in all to transfer."""
        with self.lock:
            self.files_total, self.bytes_total = files, size
            self.started = time.monotonic()
        self.refresh()

    def add_bytes(self, count: int) -> None:
        """Count ``count`` more bytes transferred."""
        with self.lock:
            self.bytes_done += count
        self.refresh()

    def file_done(self) -> None:
        """Count one more file finished (copied or failed)."""
        with self.lock:
            self.files_done += 1
        self.refresh()

    def discount(self, size: int) -> None:
        """Take one file of ``size`` bytes out of the totals: it needed no copy."""
        with self.lock:
            self.files_total -= 1
            self.bytes_total -= size
        self.refresh()

    def note(self, line: str, *, error: bool = False) -> None:
        """Print ``line`` without garbling the display (quiet: print nothing)."""

    def refresh(self) -> None:
        """Redraw after a change (quiet: nothing to draw)."""

    def close(self) -> None:
        """Draw the final state and release the display."""

    def status(self) -> str:
        """Return the counts in one line: files, bytes, rate and time left."""
        with self.lock:
            files, files_total = self.files_done, self.files_total
            done, total = self.bytes_done, self.bytes_total
            elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        line = (
            f"{files}/{files_total} files, {format_size(done, human=True)}"
            f"/{format_size(total, human=True)}, {format_size(round(rate), human=True)}/s"
        )
        if rate > 0 and done < total:
            line += f", ETA {_duration((total - done) / rate)}"
        return line


class PlainProgress(Progress):
    """Print the status as a line every ``interval`` seconds and once at the end."""

    def __init__(
        self,
        write: Callable[[str], object],
        write_error: Callable[[str], object],
        *,
        interval: float = 5.0,
    ) -> None:
        super().__init__()
        self._write, self._write_error = write, write_error
        self._interval = interval
        self._last = time.monotonic()

    def note(self, line: str, *, error: bool = False) -> None:
        """Print ``line`` on the output, or on the error output."""
        (self._write_error if error else self._write)(line)

    def refresh(self) -> None:
        """Print the status when ``interval`` seconds passed since the last one."""
        now = time.monotonic()
        with self.lock:
            due = now - self._last >= self._interval
            if due:
                self._last = now
        if due:
            self._write(self.status())

    def close(self) -> None:
        """Print the final status, if there was anything to do."""
        if self.files_total:
            self._write(self.status())


class RichProgress(Progress):
    """Draw a ``rich`` progress bar on ``stream`` (a terminal)."""

    def __init__(self, rich_progress: Any, stream: TextIO) -> None:
        super().__init__()
        console = importlib.import_module("rich.console").Console(file=stream)
        columns = (
            rich_progress.TextColumn("{task.fields[files]} files"),
            rich_progress.BarColumn(),
            rich_progress.DownloadColumn(binary_units=True),
            rich_progress.TransferSpeedColumn(),
            rich_progress.TimeRemainingColumn(),
        )
        self._bar = rich_progress.Progress(*columns, console=console, transient=False)
        self._task = self._bar.add_task("copy", total=0, files="0/0")
        self._bar.start()

    def note(self, line: str, *, error: bool = False) -> None:
        """Print ``line`` above the bar."""
        self._bar.console.print(line, style="red" if error else None, markup=False, highlight=False)

    def refresh(self) -> None:
        """Move the bar to the current counts."""
        with self.lock:
            done, total = self.bytes_done, self.bytes_total
            files, files_total = self.files_done, self.files_total
        # The task counts bytes; the file counts travel as a field of the text column.
        self._bar.update(self._task, completed=done, total=total, files=f"{files}/{files_total}")

    def close(self) -> None:
        """Draw the final counts and stop the live display."""
        self.refresh()
        self._bar.stop()


class TqdmProgress(Progress):
    """Draw a ``tqdm`` progress bar of bytes on ``stream``, with the file counts beside it."""

    def __init__(self, tqdm: Any, stream: TextIO) -> None:
        super().__init__()
        self._tqdm = tqdm
        self._stream = stream
        self._bar = tqdm.tqdm(
            total=0, unit="B", unit_scale=True, unit_divisor=1024, file=stream, dynamic_ncols=True
        )

    def note(self, line: str, *, error: bool = False) -> None:
        """Print ``line`` above the bar."""
        self._tqdm.tqdm.write(line, file=self._stream)

    def refresh(self) -> None:
        """Move the bar to the current counts."""
        with self.lock:
            done, total = self.bytes_done, self.bytes_total
            files, files_total = self.files_done, self.files_total
            self._bar.total = total
            self._bar.n = done
            self._bar.set_postfix_str(f"{files}/{files_total} files", refresh=False)
            self._bar.refresh()

    def close(self) -> None:
        """Draw the final counts and release the bar."""
        self.refresh()
        self._bar.close()


def make_progress(
    write: Callable[[str], object],
    write_error: Callable[[str], object],
    *,
    terminal: TextIO | None,
    quiet: bool = False,
) -> Progress:
    """Return the best reporter: quiet, a bar on ``terminal``, or plain lines.

    ``terminal`` is the raw output stream when it is a terminal, else None.
    """
    if quiet:
        return Progress()
    if terminal is not None:
        rich_progress = _optional("rich.progress")
        if rich_progress is not None:
            return RichProgress(rich_progress, terminal)
        tqdm = _optional("tqdm")
        if tqdm is not None:
            return TqdmProgress(tqdm, terminal)
    return PlainProgress(write, write_error)
