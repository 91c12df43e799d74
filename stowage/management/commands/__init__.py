"""Hold ``manage.py stowage``; its work lives in :mod:`stowage.cli`."""

__all__: list[str] = []
