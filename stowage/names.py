"""Decide every path rule in one place: cleaning, joining, alternatives, limits.

A storage *name* is what Django hands the storage ("uploads/a.png"); a *key*
is what a driver stores ("media/uploads/a.png" with ``location="media"``).
Only this module turns one into the other, and it refuses any name that could
address a key outside ``location``: absolute names, ``..`` parts, NUL and
other control characters. Refusals raise Django's ``SuspiciousFileOperation``
with Django's own wording where Django has one.
"""

from __future__ import annotations

import os
import pathlib
import re
import unicodedata
from collections.abc import Callable, Iterator

from django.core.exceptions import SuspiciousFileOperation
from django.utils.crypto import get_random_string

__all__ = [
    "alternative_names",
    "clean_location",
    "clean_name",
    "is_plain",
    "join_key",
    "misread",
    "name_from_key",
    "overwrite_name",
    "random_alternative",
    "split_ext",
]

NameLike = str | os.PathLike[str]

# Names made only of these parts, none starting with a dot, are already
# clean: the common case skips the full analysis below.
_PLAIN = re.compile(r"[\w\-][\w\-. ]*(?:/[\w\-][\w\-. ]*)*", re.ASCII)

#: Match a name that is already clean as it stands, its own key part (None otherwise).
is_plain = _PLAIN.fullmatch


def _reject_control_characters(name: str) -> None:
    for char in name:
        if unicodedata.category(char) == "Cc":
            raise SuspiciousFileOperation(
                f"File name {name!r} contains the control character {char!r}."
            )


def clean_name(name: NameLike | None, *, allow_empty: bool = False) -> str:
    """Return ``name`` normalised to forward slashes, or raise if it is unsafe.

    Backslashes become slashes, ``.`` parts and repeated slashes collapse and
    a trailing slash is dropped. An absolute name, a ``..`` part, NUL or any
    other control character raises ``SuspiciousFileOperation``. The empty
    name (the storage root) is allowed only with ``allow_empty``.
    """
    if name is None:
        if allow_empty:
            return ""
        raise ValueError("The name must be given, not None.")
    text = os.fspath(name)
    if not isinstance(text, str):
        raise TypeError(f"A storage name must be str or a path, not {type(name).__name__}.")
    if _PLAIN.fullmatch(text):
        return text
    _reject_control_characters(text)
    posix = text.replace("\\", "/")
    path = pathlib.PurePosixPath(posix)
    if path.is_absolute() or ".." in path.parts:
        raise SuspiciousFileOperation(f"Detected path traversal attempt in '{text}'")
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    cleaned = "/".join(parts)
    if not cleaned and not allow_empty:
        raise SuspiciousFileOperation(f"Could not derive file name from '{text}'")
    return cleaned


def clean_location(location: NameLike | None) -> str:
    """Return the storage's ``location`` prefix in key form ("" for the root).

    Leading and trailing slashes are ignored ("/media/" is "media"); ``..``
    and control characters are refused as in names.
    """
    text = os.fspath(location or "").replace("\\", "/").strip("/")
    return clean_name(text, allow_empty=True)


def join_key(location: str, name: NameLike | None, *, allow_empty: bool = False) -> str:
    """Return the driver key of ``name`` inside the cleaned ``location``."""
    cleaned = clean_name(name, allow_empty=allow_empty)
    if not location:
        return cleaned
    return f"{location}/{cleaned}" if cleaned else location


def name_from_key(location: str, key: str) -> str:
    """Return the storage name of a driver ``key`` found under ``location``."""
    if not location:
        return key
    if key == location:
        return ""
    prefix = location + "/"
    if not key.startswith(prefix):
        raise SuspiciousFileOperation(f"Key {key!r} lies outside the storage location.")
    return key[len(prefix) :]


def split_ext(file_name: str) -> tuple[str, str]:
    """Split a base name into root and its whole extension ("x", ".tar.gz").

    A dotfile (".env") has no extension, as in Django.
    """
    ext = "".join(pathlib.PurePosixPath(file_name).suffixes)
    return file_name.removesuffix(ext), ext


def misread(message: str) -> SuspiciousFileOperation:
    """Return the refusal of a name the service would store under another name.

    For drivers, which raise it before writing: the refusal of an unsafe
    name stays Django's ``SuspiciousFileOperation`` wherever it is found.
    """
    return SuspiciousFileOperation(message)


def _too_long(name: str) -> SuspiciousFileOperation:
    return SuspiciousFileOperation(
        f'Storage can not find an available filename for "{name}". Please make sure '
        'that the corresponding file field allows sufficient "max_length".'
    )


def random_alternative(root: str, ext: str) -> str:
    """Return Django's alternative base name: ``root_XXXXXXX.ext``, seven random characters."""
    return f"{root}_{get_random_string(7)}{ext}"


def alternative_names(
    name: str,
    max_length: int | None = None,
    alternative: Callable[[str, str], str] = random_alternative,
) -> Iterator[str]:
    """Yield the names to try for ``name``, in Django's order, without end.

    The first is ``name`` itself when it fits ``max_length``; every later one
    is ``alternative(root, ext)`` (a storage's ``get_alternative_name``,
    Django's ``root_XXXXXXX.ext`` by default), the root truncated so the
    whole name fits. Directory parts never change. Raises
    ``SuspiciousFileOperation`` when no root is left to truncate.
    """
    dir_name, file_name = os.path.split(name)
    root, ext = split_ext(file_name)
    if max_length is None or len(name) <= max_length:
        yield name
    while True:
        candidate = os.path.join(dir_name, alternative(root, ext))
        if max_length is not None and len(candidate) > max_length:
            root = root[: max(0, len(root) - (len(candidate) - max_length))]
            if not root:
                raise _too_long(candidate)
            candidate = os.path.join(dir_name, alternative(root, ext))
        yield candidate


def overwrite_name(name: str, max_length: int | None = None) -> str:
    """Return ``name`` with its root truncated to fit ``max_length`` (overwrite mode)."""
    if max_length is None or len(name) <= max_length:
        return name
    dir_name, file_name = os.path.split(name)
    root, ext = split_ext(file_name)
    root = root[: max(0, len(root) - (len(name) - max_length))]
    if not root:
        raise _too_long(name)
    return os.path.join(dir_name, f"{root}{ext}")
