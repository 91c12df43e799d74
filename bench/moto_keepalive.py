"""moto's S3 application behind a WSGI server that keeps connections open.

``moto_server`` runs on Werkzeug's development server, which closes the
connection after every response, so each request of a benchmark pays for a
new TCP connection. AWS S3 keeps connections open and both clients reuse
them. This serves the same moto application with cheroot (installed with
wsgidav for the WebDAV tests) so the benchmark can show client cost with
reused connections as well.

Run as ``python -m bench.moto_keepalive PORT``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench._servers import start_s3_module

if TYPE_CHECKING:
    from tests.servers.moto import MotoServer

__all__ = ["serve", "start"]


def serve(port: int) -> None:
    """Serve moto's S3 application on 127.0.0.1:``port`` until terminated."""
    os.environ["MOTO_PORT"] = str(port)
    from cheroot import wsgi
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=16)
    try:
        server.start()
    finally:
        server.stop()


def start(log_dir: Path) -> MotoServer:
    """Start the server in a child process; return a ``MotoServer`` for it."""
    return start_s3_module("moto_keepalive", log_dir)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
