"""Hold the drivers: each moves bytes for keys on one service.

See :mod:`stowage.drivers.base` for the contract. Service modules import
their SDK at the top, so they are imported only when a storage uses them.
"""

__all__: list[str] = []
