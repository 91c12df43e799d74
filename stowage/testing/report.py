"""Record, per backend, which behaviours the kit checked and which it found refused.

Where a contract test depends on what a backend can do (sign URLs, give
local paths, create atomically …), it records the branch it took once its
assertions have passed: ``checked`` when the behaviour itself was exercised,
``refused`` when the backend's documented refusal was (for example
``path()`` raising ``NotImplementedError``). The backend is the contract
subclass the test ran in, so the record says what each fixtures class
really proved.

A test suite dumps the records at the end of its run with :func:`write`;
run as a program, this module turns such a dump into the data file the
documentation's conformance table is built from::

    python -m stowage.testing test-artifacts/conformance.json docs/conformance-table.json
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Literal

__all__ = [
    "CHECKED",
    "REFUSED",
    "Outcome",
    "backend_of",
    "clear",
    "main",
    "record",
    "results",
    "write",
]

Outcome = Literal["checked", "refused"]
#: The behaviour itself was exercised and held.
CHECKED: Outcome = "checked"
#: The backend's documented refusal was exercised and held.
REFUSED: Outcome = "refused"

_LOCK = threading.Lock()
#: backend -> behaviour -> outcome -> details seen (parametrized tests add several).
_RESULTS: dict[str, dict[str, dict[str, list[str]]]] = {}


def backend_of(contract: object) -> str:
    """Return the name a contract instance's results are kept under: ``module::Class``."""
    cls = type(contract)
    return f"{cls.__module__}::{cls.__qualname__}"


def record(contract: object, behaviour: str, outcome: Outcome, detail: str = "") -> None:
    """Note that ``contract``'s backend passed ``behaviour`` with ``outcome``."""
    if outcome not in (CHECKED, REFUSED):
        raise ValueError(f"outcome must be {CHECKED!r} or {REFUSED!r}, not {outcome!r}")
    with _LOCK:
        details = _RESULTS.setdefault(backend_of(contract), {}).setdefault(behaviour, {})
        seen = details.setdefault(outcome, [])
        if detail and detail not in seen:
            seen.append(detail)


def results() -> dict[str, dict[str, dict[str, list[str]]]]:
    """Return a copy of everything recorded so far, sorted by backend and behaviour."""
    with _LOCK:
        return {
            backend: {
                behaviour: {outcome: sorted(details) for outcome, details in sorted(kept.items())}
                for behaviour, kept in sorted(behaviours.items())
            }
            for backend, behaviours in sorted(_RESULTS.items())
        }


def clear() -> None:
    """Forget every record (for tests of the kit itself)."""
    with _LOCK:
        _RESULTS.clear()


def write(path: str | Path) -> Path:
    """Write :func:`results` as JSON to ``path``, creating its directory; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results(), indent=2, ensure_ascii=False) + "\n")
    return target


def _convert(dump: dict[str, dict[str, dict[str, list[str]]]], prefix: str) -> dict[str, object]:
    backends = {
        backend: behaviours
        for backend, behaviours in sorted(dump.items())
        if backend.startswith(prefix)
    }
    if not backends:
        raise SystemExit(f"the dump holds no backend whose module starts with {prefix!r}")
    return {"backends": backends}


def main(argv: list[str] | None = None) -> int:
    """Turn a run's dump into the documentation's data file (see the module docstring)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print(
            "usage: python -m stowage.testing DUMP.json TABLE.json [MODULE-PREFIX]",
            file=sys.stderr,
        )
        return 2
    dump = json.loads(Path(args[0]).read_text())
    prefix = args[2] if len(args) == 3 else "tests.drivers."
    data = _convert(dump, prefix)
    Path(args[1]).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return 0
