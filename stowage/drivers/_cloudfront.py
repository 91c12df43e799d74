"""Sign CloudFront URLs with a canned policy (key pair id and RSA private key).

A canned policy grants GET on one URL until a time. CloudFront checks an
RSA-SHA1 signature over the policy, encoded in its URL-safe base64 variant.
The ``cryptography`` package loads and uses the key (extra ``cloudfront``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from typing import Any

from stowage.exceptions import ConfigurationError, MissingDependency

__all__ = ["CloudFrontSigner"]

#: CloudFront's base64: characters that URLs would mangle, swapped out.
_URL_SAFE = str.maketrans({"+": "-", "=": "_", "/": "~"})


def _load_key(key: str | bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError as exc:
        raise MissingDependency(
            "CloudFront signed URLs need the 'cryptography' package: "
            "pip install 'django-stowage[cloudfront]'."
        ) from exc
    if isinstance(key, str) and "-----BEGIN" not in key:
        if not os.path.isfile(key):
            raise ConfigurationError(
                "Option 'cloudfront_key' must be a PEM private key or the path of a PEM file."
            )
        with open(key, "rb") as handle:
            key = handle.read()
    pem = key.encode() if isinstance(key, str) else key
    try:
        loaded = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            "Option 'cloudfront_key' is not an unencrypted PEM private key."
        ) from exc
    if not isinstance(loaded, RSAPrivateKey):
        raise ConfigurationError("Option 'cloudfront_key' must be an RSA key (CloudFront's kind).")
    return loaded


class CloudFrontSigner:
    """Sign URLs for one CloudFront key pair."""

    def __init__(self, key_id: str, key: str | bytes) -> None:
        self.key_id = key_id
        self._key = _load_key(key)

    def __repr__(self) -> str:
        return f"<CloudFrontSigner key_id={self.key_id!r}>"

    def sign(self, url: str, expires: dt.timedelta) -> str:
        """Return ``url`` with a canned-policy signature valid for ``expires`` from now."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        deadline = int((dt.datetime.now(dt.UTC) + expires).timestamp())
        condition = {"DateLessThan": {"AWS:EpochTime": deadline}}
        statement = {"Statement": [{"Resource": url, "Condition": condition}]}
        policy = json.dumps(statement, separators=(",", ":"))
        # SHA-1 is what CloudFront verifies for canned policies.
        signature = self._key.sign(policy.encode(), padding.PKCS1v15(), hashes.SHA1())
        encoded = base64.b64encode(signature).decode().translate(_URL_SAFE)
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}Expires={deadline}&Signature={encoded}&Key-Pair-Id={self.key_id}"
