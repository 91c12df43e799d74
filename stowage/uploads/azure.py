"""Upload to Azure Blob Storage in blocks under a short-lived SAS: :class:`AzureSession`.

The browser gets a SAS URL granting write (``sp=w``) on the one staging
blob until ``URL_EXPIRE`` seconds from now, signed by the server (service
SAS with the account key, or user-delegation SAS), and sends Put Block
requests, four at a time; block ids are the fixed-length base64 of the part
number. The server lists the uncommitted blocks (Get Block List), checks
they add up to the declared size, commits them (Put Block List, with the
Content-Type it accepted) and checks the blob by HEAD. A SAS cannot bound
sizes, so the server checks before committing and after. Blocks never
committed are dropped by the service after a week.

The server's own calls are SAS URLs too, valid for a minute; the account's
CORS rules (a property of the blob service, for every container) are read
and set with an account SAS, which needs the account key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import xml.etree.ElementTree as ET
from typing import Any

from django.core.files.storage import Storage as DjangoStorage

from stowage.exceptions import NotFound
from stowage.records import record
from stowage.uploads.base import CloudSession, RefusedUpload, Ticket
from stowage.uploads.cors import CorsRule
from stowage.uploads.http import send, tls_context

__all__ = ["MAX_BLOCKS", "AzureSession", "Block", "BlockClient", "block_id", "block_number"]

#: The most blocks one blob takes.
MAX_BLOCKS = 50_000
_DIGITS = 6
_CALL_EXPIRES = dt.timedelta(seconds=60)


def block_id(number: int) -> str:
    """Return the block id of part ``number``: base64 of its six digits."""
    return base64.b64encode(f"{number:0{_DIGITS}d}".encode("ascii")).decode("ascii")


def block_number(name: str) -> int | None:
    """Return the part number a block id names, or None for a block id of another kind."""
    try:
        text = base64.b64decode(name, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(text) if len(text) == _DIGITS and text.isdigit() else None


@record
class Block:
    """One uncommitted block: its id, the part number it names (if any) and its size."""

    name: str
    number: int | None
    size: int


class BlockClient:
    """Make the block-list and service-property calls for one Azure driver."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self._context = tls_context(driver.options.verify)
        self._timeout = float(driver.options.timeout)

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> bytes:
        answer = send(
            method, url, what=what, timeout=self._timeout, context=self._context, **kwargs
        )
        return answer.body

    def _blob_url(self, key: str, method: str, query: str) -> str:
        return f"{self.driver.sign(key, method=method, expires=_CALL_EXPIRES)}&{query}"

    def uncommitted(self, key: str) -> list[Block]:
        """Return the uncommitted blocks of ``key`` (none yet: an empty list)."""
        url = self._blob_url(key, "GET", "comp=blocklist&blocklisttype=uncommitted")
        try:
            body = self._send("GET", url, f"listing the blocks of {key!r}")
        except NotFound:
            return []
        blocks = []
        for element in ET.fromstring(body).iter("Block"):
            name = element.findtext("Name") or ""
            blocks.append(Block(name, block_number(name), int(element.findtext("Size") or 0)))
        return blocks

    def commit(self, key: str, names: list[str], content_type: str) -> None:
        """Make ``key`` the blocks ``names``, in order, with ``content_type`` (Put Block List)."""
        root = ET.Element("BlockList")
        for name in names:
            ET.SubElement(root, "Latest").text = name
        self._send(
            "PUT",
            self._blob_url(key, "PUT", "comp=blocklist"),
            f"committing the blocks of {key!r}",
            body=ET.tostring(root, xml_declaration=True, encoding="utf-8"),
            headers={"Content-Type": "application/xml", "x-ms-blob-content-type": content_type},
        )

    def drop(self, key: str) -> None:
        """Delete ``key`` and its uncommitted blocks.

        A blob with only uncommitted blocks does not exist for Delete Blob;
        committing an empty block list discards them, and the empty blob
        is then deleted.
        """
        self.commit(key, [], "application/octet-stream")
        self.driver.delete(key)

    def _service_url(self, permission: str) -> str:
        url = self.driver.sign_service(permission=permission, expires=_CALL_EXPIRES)
        return f"{url}&restype=service&comp=properties"

    def cors(self) -> bytes:
        """Return the blob service's properties (Get Blob Service Properties)."""
        return self._send("GET", self._service_url("r"), "reading the blob service's properties")

    def set_cors(self, cors: ET.Element) -> None:
        """Set the blob service's CORS rules to the ``Cors`` element ``cors``."""
        root = ET.Element("StorageServiceProperties")
        root.append(cors)
        self._send(
            "PUT",
            self._service_url("w"),
            "setting the blob service's CORS rules",
            body=ET.tostring(root, xml_declaration=True, encoding="utf-8"),
            headers={"Content-Type": "application/xml"},
        )


#: A CORS rule's fields: the rule's attribute and Azure's element, lists comma-separated.
_CORS_FIELDS = (
    ("origins", "AllowedOrigins"),
    ("methods", "AllowedMethods"),
    ("allowed_headers", "AllowedHeaders"),
    ("exposed_headers", "ExposedHeaders"),
)


def _azure_rule(rule: CorsRule) -> dict[str, Any]:
    fields: dict[str, Any] = {name: ",".join(getattr(rule, attr)) for attr, name in _CORS_FIELDS}
    fields["MaxAgeInSeconds"] = rule.max_age
    return fields


def _cors_element(rules: list[CorsRule]) -> ET.Element:
    cors = ET.Element("Cors")
    for rule in rules:
        element = ET.SubElement(cors, "CorsRule")
        for name, value in _azure_rule(rule).items():
            ET.SubElement(element, name).text = str(value)
    return cors


def _parse_cors(properties: bytes) -> list[CorsRule]:
    rules = []
    for element in ET.fromstring(properties).iter("CorsRule"):
        values = {
            attr: tuple(v.strip() for v in (element.findtext(name) or "").split(",") if v.strip())
            for attr, name in _CORS_FIELDS
        }
        age = (element.findtext("MaxAgeInSeconds") or "0").strip()
        rules.append(CorsRule(**values, max_age=int(age) if age.isdigit() else 0))
    return rules


class AzureSession(CloudSession):
    """Upload to Azure: Put Block by the browser under a SAS, Put Block List by the server."""

    kind = "azure"
    cors_request_headers = ("Content-Type",)

    @classmethod
    def supports(cls, storage: DjangoStorage) -> bool:
        """Take stowage's Azure storages."""
        return getattr(storage, "driver_name", None) == "azure"

    @property
    def client(self) -> BlockClient:
        """Return the block client of the storage's driver."""
        return BlockClient(self.driver)

    def part_count(self, ticket: Ticket) -> int:
        """Return how many blocks the declared size makes (none for an empty file)."""
        return math.ceil(ticket.size / self.options.PART_SIZE)

    def start(self, ticket: Ticket, origin: str | None = None) -> Ticket:
        """Check the file fits in Azure's block count; nothing is made on the service yet."""
        if self.part_count(ticket) > MAX_BLOCKS:
            raise RefusedUpload(
                f"The file needs more than {MAX_BLOCKS} blocks of PART_SIZE bytes.", 413
            )
        return ticket

    def plan(self, ticket: Ticket) -> dict[str, Any]:
        """Tell the browser the blob's SAS URL (write only, URL_EXPIRE seconds) and the blocks."""
        expires = self.options.URL_EXPIRE
        url = self.driver.sign(
            self.key(ticket.key), method="PUT", expires=dt.timedelta(seconds=expires)
        )
        return {
            "kind": self.kind,
            "url": url,
            "expires_in": expires,
            "part_size": self.options.PART_SIZE,
            "part_count": self.part_count(ticket),
        }

    def stored(self, ticket: Ticket) -> dict[str, Any]:
        """List the blocks stored (Get Block List, by the server)."""
        blocks = self.client.uncommitted(self.key(ticket.key))
        return {"stored": [{"number": b.number, "size": b.size} for b in blocks if b.number]}

    def finish(self, ticket: Ticket) -> None:
        """Check the blocks add up to the declared size, commit them, and verify by HEAD."""
        key, client = self.key(ticket.key), self.client
        blocks = client.uncommitted(key)
        total = sum(block.size for block in blocks)
        if total > ticket.size or total > ticket.max_size:
            client.drop(key)
            raise RefusedUpload("The blocks sent exceed the declared size; upload refused.", 413)
        sizes = {block.number: block.size for block in blocks}
        count, part = self.part_count(ticket), self.options.PART_SIZE
        expected = {n: min(part, ticket.size - (n - 1) * part) for n in range(1, count + 1)}
        if sizes != expected:
            raise RefusedUpload("Some parts are still missing.", 409)
        client.commit(key, [block_id(n) for n in range(1, count + 1)], ticket.content_type)
        self.verify(ticket)

    def abort(self, ticket: Ticket) -> None:
        """Drop the blocks sent and the blob, if it was committed."""
        self.client.drop(self.key(ticket.key))

    def cors_document(self, rules: list[CorsRule]) -> dict[str, Any]:
        """Return ``rules`` as the blob service's ``Cors`` property."""
        return {"Cors": [_azure_rule(rule) for rule in rules]}

    def read_cors(self) -> list[CorsRule]:
        """Read the blob service's CORS rules (they hold for every container of the account)."""
        return _parse_cors(self.client.cors())

    def write_cors(self, rules: list[CorsRule]) -> None:
        """Set the blob service's CORS rules."""
        self.client.set_cors(_cors_element(rules))
