"""Run Django's own ``file_storage`` tests on Django's storages and on stowage's.

See :mod:`tests.django_suite.harness`.
"""
