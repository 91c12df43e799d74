"""Run the demo site on http://127.0.0.1:8000 with the chosen storage backend.

``--backend local`` (default) stores files under example/media with the local
driver. ``--backend s3``, ``gcs``, ``azure`` or ``sftp`` first starts the same
local test server the test suite uses (moto, fake-gcs-server, Azurite,
OpenSSH's sshd) and stores the files there; SFTP files are served through a
Django view (``base_url``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADMIN = ("admin", "stowage-demo")


def _start_backend(name: str) -> tuple[str, dict[str, Any], Any]:
    """Start the local server for ``name``; return BACKEND, OPTIONS and the server."""
    sys.path.insert(0, str(ROOT))
    logs = Path(tempfile.mkdtemp(prefix="stowage-demo-"))
    if name == "local":
        return "stowage.LocalStorage", {}, None
    if name == "s3":
        from tests.servers.moto import start_moto

        server = start_moto(logs)
        options = {**server.options(server.create_bucket()), "querystring_expire": 600}
        return "stowage.S3Storage", options, server
    if name == "gcs":
        from tests.servers.fake_gcs import start_fake_gcs

        server = start_fake_gcs(logs)
        options = {
            "bucket_name": server.create_bucket(),
            "api_endpoint": server.url,
            "anonymous": True,
            "querystring_auth": False,
        }
        return "stowage.GCSStorage", options, server
    if name == "azure":
        from tests.servers.azurite import start_azurite

        server = start_azurite(logs)
        options = {**server.options(server.create_container()), "expiration_secs": 600}
        return "stowage.AzureStorage", options, server
    if name == "sftp":
        from tests.servers.sshd import start_sshd

        server = start_sshd(logs)
        options = {**server.options(server.new_root()), "base_url": "/files/"}
        return "stowage.SFTPStorage", options, server
    sys.exit(f"--backend {name}: unknown; choose local, s3, gcs, azure or sftp.")


def main() -> None:
    """Migrate, create the admin user, and serve the site until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--backend", default="local", help="local (default), s3, gcs, azure or sftp"
    )
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    backend, options, server = _start_backend(args.backend)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        "STOWAGE_DEMO_BACKEND": backend,
        "STOWAGE_DEMO_OPTIONS": json.dumps(options),
    }
    manage = [sys.executable, "-m", "django"]
    site: subprocess.Popen[bytes] | None = None
    # A plain kill must still stop the test server this script started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=HERE)
        create = (
            "from django.contrib.auth.models import User\n"
            f"User.objects.filter(username={ADMIN[0]!r}).exists() or "
            f"User.objects.create_superuser({ADMIN[0]!r}, 'admin@example.com', {ADMIN[1]!r})"
        )
        subprocess.run([*manage, "shell", "-v", "0", "-c", create], env=env, check=True, cwd=HERE)
        print(f"\nstowage demo on http://127.0.0.1:{args.port}/  (files: {backend})")
        print(
            f"admin: http://127.0.0.1:{args.port}/admin/  user {ADMIN[0]!r} password {ADMIN[1]!r}\n"
        )
        site = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{args.port}", "--noreload"], env=env, cwd=HERE
        )
        if site.wait() != 0:
            sys.exit(f"the site stopped with exit status {site.returncode}")
    except KeyboardInterrupt:
        pass
    finally:
        if site is not None and site.poll() is None:
            site.terminate()
            site.wait(timeout=10)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
