"""Name the objects of an upload that completes at its final name.

Where the form field names the file before the upload starts
(``DirectUploadField(upload_to=...)``) and the service creates a name only
if it is free, a session reserves a free name with an empty object and the
browser's upload completes there: saving the form copies nothing. Two small
objects in the upload's staging folder go with it:

- the *marker* (:data:`MARKER`) holds the reserved key and the upload id,
  signed, so the cleanup can abort an upload that was never saved and free
  its name, and cannot be led to delete anything else;
- the *claim* (:data:`CLAIM`), created only if absent, decides once who owns
  the reserved name: the form's save, or an abort or the cleanup. A
  reference submitted twice (a double click) is saved once.
"""

from __future__ import annotations

from django.core import signing

from stowage.records import record

__all__ = ["CLAIM", "MARKER", "Reservation", "claim_of", "is_claim", "is_marker", "marker_of"]

#: The marker's file name: ``@`` is a character no staged file name keeps.
MARKER = "@reserved"
#: The claim's file name.
CLAIM = "@claimed"

_SALT = "stowage.uploads.reserved"


@record
class Reservation:
    """What a marker holds: the reserved object's key and its upload's id."""

    key: str
    upload_id: str

    def dump(self) -> bytes:
        """Return the marker's body: the reservation, signed."""
        return signing.dumps({"k": self.key, "u": self.upload_id}, salt=_SALT).encode()

    @classmethod
    def load(cls, body: bytes) -> Reservation | None:
        """Return the reservation a marker's body holds; None unless the server signed it."""
        try:
            data = signing.loads(body.decode("utf-8", "replace"), salt=_SALT)
        except signing.BadSignature:
            return None
        return cls(str(data["k"]), str(data["u"]))


def _sibling(key: str, file_name: str) -> str:
    return f"{key.rsplit('/', 1)[0]}/{file_name}"


def marker_of(staging_key: str) -> str:
    """Return the marker's name in the staging folder of ``staging_key``."""
    return _sibling(staging_key, MARKER)


def claim_of(marker: str) -> str:
    """Return the claim's name beside ``marker``."""
    return _sibling(marker, CLAIM)


def is_marker(key: str) -> bool:
    """Tell whether a staged object's key is a marker's."""
    return key.endswith("/" + MARKER)


def is_claim(key: str) -> bool:
    """Tell whether a staged object's key is a claim's."""
    return key.endswith("/" + CLAIM)
