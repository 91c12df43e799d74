"""Hold stowage's Django management commands."""

__all__: list[str] = []
