"""The goals each benchmark row is judged against, from the project's performance issues.

A row names its goal by key; the page shows the goal and whether the
measured ratio (django-storages over stowage: above 1 favours stowage) meets
it. Every row is held at least to parity with its peer; some goals add a
larger ratio, or a ceiling on stowage's peak memory.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GOALS", "Goal", "verdict"]


@dataclass(frozen=True)
class Goal:
    """The least ratio a row must reach, and optionally a ceiling on stowage's peak RSS."""

    min_ratio: float = 1.0
    max_peak_mib: float | None = None

    def describe(self) -> str:
        """Return the goal as the page shows it."""
        text = f"≥ {self.min_ratio:g}×"
        if self.max_peak_mib is not None:
            text += f", peak RSS < {self.max_peak_mib:g} MiB"
        return text


GOALS: dict[str, Goal] = {
    # Every row: no slower (or larger) than django-storages.
    "parity": Goal(),
    # S3, from the performance issue.
    "s3-url": Goal(30.0),
    "s3-small": Goal(4.0),
    "s3-first64k-cpu": Goal(50.0),
    "s3-first64k-memory": Goal(1.0, max_peak_mib=64),
    "s3-upload-memory": Goal(1.0, max_peak_mib=100),
    "s3-listdir": Goal(2.0),
    "s3-import": Goal(5.0),
    # GCS, from the performance issue.
    "gcs-hmac-url": Goal(10.0),
    "gcs-listdir": Goal(1.5),
    # Native async against a thread pool running the sync API.
    "async-threads": Goal(2.0),
    # Direct uploads: the widget keeps the bytes out of the Django process.
    "uploads-django-cpu": Goal(5.0),
    "uploads-django-memory": Goal(1.0, max_peak_mib=100),
    # collectstatic to S3.
    "static-first": Goal(3.0),
    "static-noop": Goal(20.0),
}


def short_of(ratio: float, goal: float) -> str:
    """Format ``ratio`` with two decimals, or as many more as show it below ``goal``."""
    for digits in range(2, 6):
        text = f"{ratio:.{digits}f}"
        if float(text) < goal:
            return text
    return text


def verdict(goal: Goal, ratio: float, peak_mib: float | None = None) -> tuple[bool, str]:
    """Return whether ``ratio`` (and stowage's ``peak_mib``) meet ``goal``, and why not."""
    reasons = []
    if not ratio >= goal.min_ratio:
        reasons.append(f"ratio {short_of(ratio, goal.min_ratio)}× below {goal.min_ratio:g}×")
    if goal.max_peak_mib is not None:
        if peak_mib is None:
            reasons.append("peak RSS not measured")
        elif peak_mib >= goal.max_peak_mib:
            reasons.append(f"peak RSS {peak_mib:.0f} MiB")
    return (not reasons, "; ".join(reasons))
