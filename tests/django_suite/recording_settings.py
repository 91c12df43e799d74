"""Settings for Django's ``runtests.py`` that record each test's outcome as JSON.

This file is copied into the unpacked Django ``tests/`` directory and named
with ``--settings``; it runs inside Django's test process, where only that
directory (not this project's ``tests`` package) is importable. It keeps
Django's own test settings and swaps in a runner whose result class writes
``{test id: outcome}`` to the file named by ``STOWAGE_SUITE_RESULTS``.
"""

from __future__ import annotations

import json
import os
import traceback
import unittest
from typing import Any

from django.test.runner import DiscoverRunner
from test_sqlite import *  # type: ignore[import-not-found]  # noqa: F403

__all__ = ["TEST_RUNNER", "RecordingResult", "RecordingRunner"]

TEST_RUNNER = f"{__name__}.RecordingRunner"

# Outcomes that count as failures, from worst to mildest: a test keeps the worst.
_RANK = {"error": 3, "fail": 2, "unexpected-success": 1}


def _test_id(test: Any) -> str:
    # A failing subTest is reported for its parent test.
    parent = getattr(test, "test_case", None)
    return str((parent or test).id())


class RecordingResult(unittest.TextTestResult):
    """Keep each test's outcome and a short reason, and write them all at the end."""

    outcomes: dict[str, dict[str, str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes = {}

    def _record(self, test: Any, outcome: str, detail: str = "") -> None:
        key = _test_id(test)
        previous = self.outcomes.get(key)
        if previous and _RANK.get(previous["outcome"], 0) >= _RANK.get(outcome, 0):
            return
        self.outcomes[key] = {"outcome": outcome, "detail": detail}

    @staticmethod
    def _last_line(err: Any) -> str:
        lines = "".join(traceback.format_exception(*err)).strip().splitlines()
        return lines[-1] if lines else ""

    def addSuccess(self, test: Any) -> None:
        super().addSuccess(test)
        self.outcomes.setdefault(_test_id(test), {"outcome": "pass", "detail": ""})

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "fail", self._last_line(err))

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "error", self._last_line(err))

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, "skip", reason)

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "expected-failure", self._last_line(err))

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "unexpected-success")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._record(test, "fail" if failed else "error", self._last_line(err))

    def stopTestRun(self) -> None:
        super().stopTestRun()
        with open(os.environ["STOWAGE_SUITE_RESULTS"], "w", encoding="utf-8") as out:
            json.dump(self.outcomes, out, indent=1, sort_keys=True)


class RecordingRunner(DiscoverRunner):
    """Django's runner, reporting through :class:`RecordingResult`."""

    def get_resultclass(self) -> type[unittest.TextTestResult]:
        return RecordingResult
