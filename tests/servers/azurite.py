"""Azurite's blob service on loopback, for the Azure driver's tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers._process import ServerProcess, free_port

__all__ = [
    "Azurite",
    "azure_container",
    "azurite",
    "azurite_oauth",
    "self_signed_certificate",
    "start_azurite",
]

#: Azurite's published development account: a well-known test key, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
PROGRAM = Path(__file__).resolve().parent.parent / "node" / "node_modules" / ".bin" / "azurite-blob"


@dataclass
class Azurite:
    """A running Azurite blob service."""

    process: ServerProcess
    endpoint: str
    #: The PEM CA certificate an https Azurite's certificate chains to, else None.
    certificate: Path | None = None

    def client(self) -> Any:
        """Return an independent azure-storage-blob client on this service."""
        from azure.storage.blob import BlobServiceClient

        if self.certificate is None:
            return BlobServiceClient(account_url=self.endpoint, credential=ACCOUNT_KEY)
        return BlobServiceClient(
            account_url=self.endpoint,
            credential=ACCOUNT_KEY,
            connection_verify=str(self.certificate),
        )

    def create_container(self) -> str:
        """Create a fresh container and return its name."""
        name = f"c{secrets.token_hex(6)}"
        self.client().create_container(name)
        return name

    def options(self, container: str) -> dict[str, Any]:
        """Return stowage OPTIONS for ``container`` on this service."""
        options = {
            "azure_container": container,
            "account_name": ACCOUNT,
            "account_key": ACCOUNT_KEY,
            "endpoint": self.endpoint,
        }
        if self.certificate is not None:
            options["verify"] = str(self.certificate)
        return options

    def stop(self) -> None:
        """Stop the service by its PID."""
        self.process.stop()


def self_signed_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """Write a throwaway CA, a certificate for 127.0.0.1 it signs, and that key.

    Return the CA, certificate and key paths. rustls refuses a CA certificate
    as a server's own, so the server gets a leaf and clients trust the CA.
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def issue(subject: str, issuer: str, public: Any, signer: Any, *, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            # Key identifiers: Python 3.13's strict X.509 checks require them.
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("stowage test CA", "stowage test CA", ca_key.public_key(), ca_key, ca=True)
    leaf = issue("127.0.0.1", "stowage test CA", key.public_key(), ca_key, ca=False)
    paths = [directory / f"azurite-{part}.pem" for part in ("ca", "cert", "key")]
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths[0], paths[1], paths[2]


def start_azurite(log_dir: Path, *, oauth: bool = False) -> Azurite:
    """Start Azurite's blob service on a free 127.0.0.1 port.

    With ``oauth`` it serves https (a self-signed certificate) and accepts
    bearer tokens (``--oauth basic``: it checks their claims, not their
    signature), which Azurite accepts over https only.
    """
    if not PROGRAM.exists():
        raise RuntimeError(
            "Azurite is missing: run `make node-deps` (npm ci in tests/node; make test does it)."
        )
    port = free_port()
    argv = [
        str(PROGRAM),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--silent",
    ]
    certificate = None
    if oauth:
        certificate, leaf, key = self_signed_certificate(log_dir)
        argv += ["--cert", str(leaf), "--key", str(key), "--oauth", "basic"]
    name = "azurite-oauth" if oauth else "azurite"
    process = ServerProcess(name, argv, port=port, log_dir=log_dir)
    process.wait_ready()
    scheme = "https" if oauth else "http"
    return Azurite(process, f"{scheme}://127.0.0.1:{port}/{ACCOUNT}", certificate)


@pytest.fixture(scope="session")
def azurite(server_logs: Path) -> Iterator[Azurite]:
    """Run one Azurite for the whole test session."""
    server = start_azurite(server_logs)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_oauth(server_logs: Path) -> Iterator[Azurite]:
    """Run one Azurite on https that takes bearer tokens, for the whole test session."""
    server = start_azurite(server_logs, oauth=True)
    yield server
    server.stop()


@pytest.fixture
def azure_container(azurite: Azurite) -> str:
    """Return a new, empty container."""
    return azurite.create_container()
