"""Benchmarks of stowage against django-storages, on the same servers, in one run."""
