"""Do the work of ``manage.py stowage``: list, copy, sync and check storages.

The management command (:mod:`stowage.management.commands.stowage`) only
parses arguments and prints; the modules here do the work and know nothing
of argparse:

* :mod:`~stowage.cli.locations` — ``ALIAS[:PREFIX]`` arguments;
* :mod:`~stowage.cli.listing` — listings with sizes and times (``ls``);
* :mod:`~stowage.cli.transfer` — streamed, parallel, verified copies (``cp``, ``sync``);
* :mod:`~stowage.cli.progress` — progress bars and lines;
* :mod:`~stowage.cli.roundtrip` — live write/read/url/delete checks (``check``);
* :mod:`~stowage.cli.diagnosis` — the likely cause of a failure.
"""

__all__: list[str] = []
