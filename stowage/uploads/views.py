"""Authorise, sign, resume, finish and abort direct uploads; serve tus 1.0.

Every view needs a user that :func:`~stowage.uploads.config.may_upload`
admits and a CSRF token (the tus views take it in ``X-CSRFToken``). A
ticket, signed by the server, carries the upload between calls: the
browser can neither choose the staging key nor change the limits.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import mimetypes
import posixpath
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from typing import Any

from django.core import signing
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import storages
from django.core.files.utils import validate_file_name
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from stowage.exceptions import StowageError
from stowage.uploads.config import UploadSettings, may_upload, upload_settings
from stowage.uploads.sessions import (
    RefusedUpload,
    S3Session,
    Ticket,
    TusSession,
    UploadSession,
    session_for,
    session_of_kind,
)
from stowage.uploads.staged import sign_staged

__all__ = [
    "POLICY_SALT",
    "TICKET_SALT",
    "abort",
    "complete",
    "create",
    "sign_parts",
    "sign_policy",
    "status",
    "tus_create",
    "tus_upload",
]

POLICY_SALT = "stowage.uploads.policy"
TICKET_SALT = "stowage.uploads.ticket"
TUS_VERSION = "1.0.0"
_READ = 64 * 1024

View = Callable[..., HttpResponse]


def sign_policy(
    alias: str, max_size: int, content_types: list[str], upload_to: str | None = None
) -> str:
    """Return the signed limits a widget hands to :func:`create` (the browser cannot alter them).

    ``upload_to`` is the folder (a ``strftime`` pattern) the form's model
    field saves to, when the form field declares it.
    """
    limits: dict[str, Any] = {"a": alias, "m": max_size, "t": content_types}
    if upload_to is not None:
        limits["d"] = upload_to
    return signing.dumps(limits, salt=POLICY_SALT)


def _guarded(view: View) -> View:
    """Refuse anonymous or unpermitted users; turn refusals into JSON answers."""

    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not may_upload(request):
            return JsonResponse({"error": "You may not upload files here."}, status=403)
        try:
            return view(request, *args, **kwargs)
        except RefusedUpload as exc:
            return JsonResponse({"error": str(exc)}, status=exc.status)
        except StowageError as exc:
            return JsonResponse({"error": f"The storage failed: {exc}"}, status=502)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise RefusedUpload("The request body is not JSON.") from exc
    if not isinstance(data, dict):
        raise RefusedUpload("The request body must be a JSON object.")
    return data


def _user(request: HttpRequest) -> str:
    return str(getattr(request.user, "pk", "") or "")


def _ticket(request: HttpRequest, token: Any) -> tuple[Ticket, UploadSession]:
    """Verify ``token`` (signature, age, owner); return its ticket and session."""
    options = upload_settings()
    try:
        data = signing.loads(str(token), salt=TICKET_SALT, max_age=options.SESSION_AGE)
    except signing.BadSignature as exc:
        raise RefusedUpload("The upload token is invalid or expired; start again.", 403) from exc
    ticket = Ticket.load(data)
    if ticket.user != _user(request):
        raise RefusedUpload("This upload belongs to another user.", 403)
    return ticket, session_of_kind(ticket.kind, storages[ticket.alias], ticket.alias, options)


def _origin(request: HttpRequest) -> str:
    """Return the page's origin: CSRF protection has checked the Origin header, if sent."""
    return request.headers.get("Origin") or f"{request.scheme}://{request.get_host()}"


def _type_allowed(content_type: str, patterns: list[str]) -> bool:
    return not patterns or any(fnmatchcase(content_type, p) for p in patterns)


def _wanted_name(storage: Any, upload_to: Any, name: str) -> str:
    """Return the name a model field with ``upload_to`` (a string) would save ``name`` as.

    As Django's ``FileField.generate_filename`` does, on the day of the
    upload; empty where ``upload_to`` is not declared or the name is unsafe
    (the save refuses it then, and the upload is staged).
    """
    if not isinstance(upload_to, str):
        return ""
    folder = dt.datetime.now().strftime(upload_to)
    try:
        validate_file_name(posixpath.join(folder, name), allow_relative_path=True)
        return str(storage.generate_filename(posixpath.join(folder, name)))
    except SuspiciousFileOperation:
        return ""


def _new_ticket(
    request: HttpRequest, policy: Any, name: Any, size: Any, content_type: Any
) -> tuple[Ticket, UploadSession, UploadSettings]:
    """Check a request to upload against the signed policy; return a started ticket."""
    options = upload_settings()
    try:
        limits = signing.loads(str(policy), salt=POLICY_SALT)
    except signing.BadSignature as exc:
        raise RefusedUpload("The upload policy is invalid; reload the page.", 403) from exc
    if not isinstance(name, str) or not name.strip() or len(name) > 1000:
        raise RefusedUpload("Give the file's name.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RefusedUpload("Give the file's size in bytes.")
    if size > limits["m"]:
        raise RefusedUpload(
            f"The file is too large: {size} bytes, the limit is {limits['m']} bytes.", 413
        )
    content_type = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    guessed = mimetypes.guess_type(name)[0]
    for candidate in {content_type, guessed or content_type}:
        if not _type_allowed(candidate, limits["t"]):
            raise RefusedUpload(f"Files of type {candidate!r} are not allowed here.", 415)
    alias = limits["a"]
    storage = storages[alias]
    session = session_for(storage, alias, options)
    user = _user(request)
    ticket = Ticket(
        alias,
        session.kind,
        session.staging_key(user, name),
        "",
        name,
        size,
        content_type,
        user,
        limits["m"],
        wanted=_wanted_name(storage, limits.get("d"), name),
    )
    return session.start(ticket, _origin(request)), session, options


def _token(ticket: Ticket) -> str:
    return signing.dumps(ticket.dump(), salt=TICKET_SALT, compress=True)


@csrf_protect
@require_POST
@_guarded
def create(request: HttpRequest) -> HttpResponse:
    """Authorise an upload: check the limits, choose the staging key, start it."""
    data = _body(request)
    ticket, session, _ = _new_ticket(
        request, data.get("policy"), data.get("name"), data.get("size"), data.get("type")
    )
    token = _token(ticket)
    answer = {"token": token, **session.plan(ticket)}
    if isinstance(session, TusSession):
        answer["location"] = reverse("stowage_uploads:tus-upload", args=[token])
    return JsonResponse(answer, status=201)


@csrf_protect
@require_POST
@_guarded
def sign_parts(request: HttpRequest) -> HttpResponse:
    """Presign the PUT of some parts of an S3 upload, with their CRC32s where they carry them."""
    data = _body(request)
    ticket, session = _ticket(request, data.get("token"))
    if not isinstance(session, S3Session):
        raise RefusedUpload("Only S3 uploads have parts to sign.")
    numbers = data.get("parts")
    if not isinstance(numbers, list) or not all(isinstance(n, int) for n in numbers):
        raise RefusedUpload("Give 'parts', a list of part numbers.")
    given = data.get("checksums")
    checksums = (
        {int(n): v for n, v in given.items() if str(n).isdigit()} if isinstance(given, dict) else {}
    )
    urls = session.sign_parts(ticket, numbers, checksums)
    return JsonResponse({"urls": {str(n): url for n, url in urls.items()}})


@csrf_protect
@require_POST
@_guarded
def status(request: HttpRequest) -> HttpResponse:
    """Report what an upload has stored, to resume it."""
    ticket, session = _ticket(request, _body(request).get("token"))
    return JsonResponse({**session.plan(ticket), **session.stored(ticket)})


@csrf_protect
@require_POST
@_guarded
def complete(request: HttpRequest) -> HttpResponse:
    """Join and verify an upload; return the value the form submits."""
    ticket, session = _ticket(request, _body(request).get("token"))
    session.finish(ticket)
    return JsonResponse({"value": sign_staged(ticket), "name": ticket.name, "size": ticket.size})


@csrf_protect
@require_POST
@_guarded
def abort(request: HttpRequest) -> HttpResponse:
    """Abort an upload and drop what it stored."""
    ticket, session = _ticket(request, _body(request).get("token"))
    session.abort(ticket)
    return JsonResponse({"aborted": True})


def _tus_headers(response: HttpResponse) -> HttpResponse:
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    return response


def _tus_options() -> HttpResponse:
    response = HttpResponse(status=204)
    response["Tus-Version"] = TUS_VERSION
    response["Tus-Extension"] = "creation,termination"
    response["Tus-Max-Size"] = str(upload_settings().MAX_SIZE)
    return _tus_headers(response)


def _metadata(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in header.split(","))):
        key, _, value = pair.partition(" ")
        try:
            found[key] = base64.b64decode(value).decode() if value else ""
        except ValueError as exc:
            raise RefusedUpload(f"Upload-Metadata {key!r} is not base64.") from exc
    return found


@csrf_protect
@require_http_methods(["POST", "OPTIONS"])
@_guarded
def tus_create(request: HttpRequest) -> HttpResponse:
    """Create a tus upload (extension "creation"); metadata carries filename, filetype, policy."""
    if request.method == "OPTIONS":
        return _tus_options()
    try:
        length = int(request.headers.get("Upload-Length", ""))
    except ValueError as exc:
        raise RefusedUpload(
            "Upload-Length is required (deferred length is not supported)."
        ) from exc
    meta = _metadata(request.headers.get("Upload-Metadata", ""))
    ticket, session, _ = _new_ticket(
        request, meta.get("policy"), meta.get("filename"), length, meta.get("filetype")
    )
    if not isinstance(session, TusSession):
        session.abort(ticket)
        raise RefusedUpload("This storage takes uploads directly; use the create view.")
    response = HttpResponse(status=201)
    response["Location"] = request.build_absolute_uri(
        reverse("stowage_uploads:tus-upload", args=[_token(ticket)])
    )
    return _tus_headers(response)


def _chunks(request: HttpRequest) -> Iterator[bytes]:
    while chunk := request.read(_READ):
        yield chunk


@csrf_protect
@require_http_methods(["HEAD", "PATCH", "DELETE", "OPTIONS"])
@_guarded
def tus_upload(request: HttpRequest, token: str) -> HttpResponse:
    """Report the offset (HEAD), append a chunk (PATCH) or terminate (DELETE) a tus upload."""
    if request.method == "OPTIONS":
        return _tus_options()
    ticket, session = _ticket(request, token)
    if not isinstance(session, TusSession):
        raise RefusedUpload("Not a tus upload.")
    if request.method == "DELETE":
        session.abort(ticket)
        return _tus_headers(HttpResponse(status=204))
    if request.method == "PATCH":
        if request.content_type != "application/offset+octet-stream":
            return _tus_headers(HttpResponse(status=415))
        try:
            offset = int(request.headers.get("Upload-Offset", ""))
        except ValueError as exc:
            raise RefusedUpload("Upload-Offset is required.") from exc
        reached = session.append(ticket, offset, _chunks(request))
        response = HttpResponse(status=204)
    else:
        reached = session.offset(ticket)
        response = HttpResponse(status=200)
        response["Upload-Length"] = str(ticket.size)
    response["Upload-Offset"] = str(reached)
    return _tus_headers(response)
