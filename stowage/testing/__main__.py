"""Turn a test run's kit records into the documentation's data file.

``python -m stowage.testing DUMP.json TABLE.json`` (see :mod:`stowage.testing.report`).
"""

from stowage.testing.report import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
