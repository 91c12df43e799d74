"""The direct-upload views, sessions and form field, on moto's S3 and the memory storage.

The browser's side is in tests/browser/test_direct_uploads.py; here the test
client plays the browser and PUTs parts to the presigned URLs itself.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import datetime as dt
import json
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, ClassVar
from unittest import mock

import pytest
from django.core import signing
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.test import Client
from django.urls import include, path

from stowage import S3Storage
from stowage.forms import DirectUploadField, StagedValue
from stowage.uploads.config import upload_settings
from stowage.uploads.sessions import RefusedUpload, user_folder
from stowage.uploads.staged import StagedUpload, load_staged
from stowage.uploads.views import TICKET_SALT, sign_policy
from tests.servers.moto import MotoServer

urlpatterns = [path("uploads/", include("stowage.uploads.urls"))]

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

MiB = 1024 * 1024
PART = 5 * MiB


@pytest.fixture
def uploads_settings(settings: Any, tmp_path: Any) -> Any:
    settings.STOWAGE_DIRECT_UPLOADS = {
        "PERMISSION": "auth.add_user",
        "PART_SIZE": PART,
        "CHUNK_SIZE": MiB,
        "TEMP_DIR": str(tmp_path / "tus"),
    }
    return settings


@pytest.fixture
def on_s3(uploads_settings: Any, s3_server: MotoServer, s3_bucket: str) -> str:
    uploads_settings.STORAGES = {
        "default": {"BACKEND": "stowage.S3Storage", "OPTIONS": s3_server.options(s3_bucket)},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return s3_bucket


@pytest.fixture
def on_memory(uploads_settings: Any) -> None:
    uploads_settings.STORAGES = {
        "default": {"BACKEND": "stowage.MemoryStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def make_user(django_user_model: Any) -> Callable[..., Any]:
    from django.contrib.auth.models import Permission

    def make(name: str, *, permitted: bool = True, staff: bool = False) -> Any:
        user = django_user_model.objects.create_user(name, password="pw", is_staff=staff)
        if permitted:
            user.user_permissions.add(Permission.objects.get(codename="add_user"))
        return user

    return make


@pytest.fixture
def uploader(make_user: Callable[..., Any]) -> Client:
    client = Client()
    client.force_login(make_user("alice"))
    return client


def post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def policy(max_size: int = 40 * MiB, types: list[str] | None = None) -> str:
    return sign_policy("default", max_size, types or [])


def start(
    client: Client, name: str, size: int, kind: str = "application/octet-stream", **kw: Any
) -> Any:
    return post(
        client, "/uploads/", {"policy": policy(**kw), "name": name, "size": size, "type": kind}
    )


def put_parts(urls: dict[str, str], data: bytes) -> None:
    for number, url in urls.items():
        n = int(number)
        chunk = data[(n - 1) * PART : n * PART]
        request = urllib.request.Request(
            url, data=chunk, method="PUT", headers={"Content-Type": "application/octet-stream"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def upload_to_s3(
    client: Client, name: str, data: bytes, kind: str = "application/octet-stream"
) -> str:
    created = start(client, name, len(data), kind)
    assert created.status_code == 201, created.content
    token = created.json()["token"]
    count = created.json()["part_count"]
    signed = post(client, "/uploads/sign/", {"token": token, "parts": list(range(1, count + 1))})
    put_parts(signed.json()["urls"], data)
    done = post(client, "/uploads/complete/", {"token": token})
    assert done.status_code == 200, done.content
    return str(done.json()["value"])


def sigv4_client(server: MotoServer) -> Any:
    import boto3
    from botocore.config import Config

    from tests.servers.moto import ACCESS_KEY, REGION, SECRET_KEY

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def ticket_of(token: str) -> dict[str, Any]:
    return dict(signing.loads(token, salt=TICKET_SALT))


# -- who may upload ------------------------------------------------------------------


def test_anonymous_users_get_no_authorisation(on_memory: None) -> None:
    answer = start(Client(), "a.bin", 10)
    assert answer.status_code == 403
    assert "may not upload" in answer.json()["error"]


def test_users_without_the_permission_get_none(on_memory: None, make_user: Any) -> None:
    client = Client()
    client.force_login(make_user("bob", permitted=False, staff=True))
    assert start(client, "a.bin", 10).status_code == 403


def test_without_a_permission_setting_only_staff_may_upload(
    on_memory: None, settings: Any, make_user: Any
) -> None:
    settings.STOWAGE_DIRECT_UPLOADS = {"TEMP_DIR": settings.STOWAGE_DIRECT_UPLOADS["TEMP_DIR"]}
    plain, staff = Client(), Client()
    plain.force_login(make_user("carol"))
    staff.force_login(make_user("dave", permitted=False, staff=True))
    assert start(plain, "a.bin", 10).status_code == 403
    assert start(staff, "a.bin", 10).status_code == 201


def test_a_check_hook_replaces_the_permission(
    on_memory: None, settings: Any, uploader: Client
) -> None:
    settings.STOWAGE_DIRECT_UPLOADS = {**settings.STOWAGE_DIRECT_UPLOADS, "CHECK": "builtins.bool"}
    # bool(request) is True: every request passes, even anonymous ones.
    assert start(Client(), "a.bin", 10).status_code == 201


def test_views_need_the_csrf_token(on_memory: None, make_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("erin"))
    assert start(client, "a.bin", 10).status_code == 403
    client.get("/uploads/tus/")  # any answer sets no cookie: fetch one the usual way
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    answer = client.post(
        "/uploads/",
        json.dumps({"policy": policy(), "name": "a.bin", "size": 10, "type": ""}),
        content_type="application/json",
        headers={"X-CSRFToken": _mask_cipher_secret(secret)},
    )
    assert answer.status_code == 201


def test_get_is_refused(on_memory: None, uploader: Client) -> None:
    assert uploader.get("/uploads/").status_code == 405


# -- limits and staging keys ---------------------------------------------------------------


def test_staging_key_is_chosen_by_the_server_per_user(on_memory: None, make_user: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    keys = []
    for user in (alice, bob, alice):
        client = Client()
        client.force_login(user)
        answer = start(client, "../../etc/pass wd.bin", 10)
        assert answer.status_code == 201
        keys.append(ticket_of(answer.json()["token"])["key"])
    assert keys[0].startswith(f"stowage-staging/{user_folder(str(alice.pk))}/")
    assert keys[1].startswith(f"stowage-staging/{user_folder(str(bob.pk))}/")
    assert keys[0] != keys[2]  # a fresh random folder each time
    assert all(key.endswith("/pass_wd.bin") and ".." not in key for key in keys)
    assert str(alice.pk) not in keys[0].split("/")[1]


def test_a_tampered_policy_or_token_is_refused(on_memory: None, uploader: Client) -> None:
    forged = signing.dumps({"a": "default", "m": 10**12, "t": []}, salt="other")
    answer = post(uploader, "/uploads/", {"policy": forged, "name": "a.bin", "size": 5, "type": ""})
    assert answer.status_code == 403
    token = start(uploader, "a.bin", 10).json()["token"]
    assert post(uploader, "/uploads/status/", {"token": token + "x"}).status_code == 403


def test_another_users_token_is_refused(on_memory: None, uploader: Client, make_user: Any) -> None:
    token = start(uploader, "a.bin", 10).json()["token"]
    thief = Client()
    thief.force_login(make_user("mallory"))
    answer = post(thief, "/uploads/status/", {"token": token})
    assert answer.status_code == 403
    assert "another user" in answer.json()["error"]


def test_size_and_type_limits(on_memory: None, uploader: Client) -> None:
    too_big = start(uploader, "a.bin", 40 * MiB + 1)
    assert too_big.status_code == 413
    assert "too large" in too_big.json()["error"]
    text_only = {"types": ["text/plain"]}
    assert start(uploader, "a.txt", 5, "text/plain", **text_only).status_code == 201
    assert start(uploader, "a.png", 5, "image/png", **text_only).status_code == 415
    # The name's type counts too: a page cannot pass as text.
    assert start(uploader, "a.html", 5, "text/plain", **text_only).status_code == 415
    assert start(uploader, "a.bin", -1).status_code == 400


def test_settings_are_checked(settings: Any) -> None:
    settings.STOWAGE_DIRECT_UPLOADS = {"MAX_SIZ": 5}
    with pytest.raises(ImproperlyConfigured, match="MAX_SIZ"):
        upload_settings()
    settings.STOWAGE_DIRECT_UPLOADS = {"PART_SIZE": MiB}
    with pytest.raises(ImproperlyConfigured, match="PART_SIZE"):
        upload_settings()
    settings.STOWAGE_DIRECT_UPLOADS = {"URL_EXPIRE": 7 * 24 * 3600}
    with pytest.raises(ImproperlyConfigured, match="minutes"):
        upload_settings()


# -- S3 -----------------------------------------------------------------------------


def test_s3_upload_is_staged_verified_and_moved_to_free_names(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    data = bytes(range(256)) * (PART // 256 * 2 + 7)  # three parts, the last short
    storage = storages["default"]
    names = []
    for _ in range(2):
        value = upload_to_s3(uploader, "report.bin", data)
        staged = load_staged(value)
        assert isinstance(staged, StagedUpload)
        names.append(storage.save("docs/report.bin", staged))
    assert names[0] == "docs/report.bin"
    assert names[1] != names[0]
    assert names[1].startswith("docs/report_")
    client = s3_server.boto3()
    for name in names:
        assert client.get_object(Bucket=on_s3, Key=name)["Body"].read() == data
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=on_s3).get("Contents", [])]
    assert sorted(keys) == sorted(names)  # the staged objects are gone
    assert client.list_multipart_uploads(Bucket=on_s3).get("Uploads", []) == []


def test_s3_presigned_part_url_matches_botocore_and_expires_in_minutes(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    import botocore.auth

    created = start(uploader, "a.bin", 10).json()
    ticket = ticket_of(created["token"])
    instant = dt.datetime(2026, 12, 3, 8, 0, 0)
    with (
        mock.patch("stowage.drivers._sigv4._timestamp", return_value="20261203T080000Z"),
        mock.patch.object(botocore.auth, "get_current_datetime", return_value=instant),
    ):
        ours = post(uploader, "/uploads/sign/", {"token": created["token"], "parts": [1]}).json()[
            "urls"
        ]["1"]
        theirs = sigv4_client(s3_server).generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": on_s3,
                "Key": ticket["key"],
                "UploadId": ticket["id"],
                "PartNumber": 1,
                "ContentLength": 10,
            },
            ExpiresIn=600,
        )
    signature = ours.rsplit("X-Amz-Signature=", 1)[1]
    assert f"X-Amz-Signature={signature}" in theirs
    assert "X-Amz-Expires=600" in ours
    assert "X-Amz-SignedHeaders=content-length%3Bhost" in ours
    assert "stowage-test-secret" not in ours


def test_s3_part_urls_sign_each_parts_planned_length(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    """A part larger than planned does not match the signature, so S3 refuses it.

    moto checks no presigned signature, so this is shown at the signature
    level, botocore being the oracle: the URL's signature is the one of a PUT
    of exactly the planned Content-Length, and not the one of a larger part.
    """
    import botocore.auth

    size = 2 * PART + 7
    created = start(uploader, "a.bin", size).json()
    ticket = ticket_of(created["token"])
    instant = dt.datetime(2026, 12, 3, 8, 0, 0)

    def botocore_signature(number: int, length: int) -> str:
        url = sigv4_client(s3_server).generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": on_s3,
                "Key": ticket["key"],
                "UploadId": ticket["id"],
                "PartNumber": number,
                "ContentLength": length,
            },
            ExpiresIn=600,
        )
        return str(url.rsplit("X-Amz-Signature=", 1)[1])

    with (
        mock.patch("stowage.drivers._sigv4._timestamp", return_value="20261203T080000Z"),
        mock.patch.object(botocore.auth, "get_current_datetime", return_value=instant),
    ):
        urls = post(uploader, "/uploads/sign/", {"token": created["token"], "parts": [1, 3]})
        ours = {
            int(n): url.rsplit("X-Amz-Signature=", 1)[1] for n, url in urls.json()["urls"].items()
        }
        assert ours[1] == botocore_signature(1, PART)
        assert ours[3] == botocore_signature(3, 7)  # the last part is the rest
        assert ours[1] != botocore_signature(1, PART + 1)  # a tampered, larger part
        assert ours[3] != botocore_signature(3, PART)


def test_s3_sign_refuses_part_numbers_past_the_declared_size(on_s3: str, uploader: Client) -> None:
    token = start(uploader, "a.bin", PART + 1).json()["token"]
    assert post(uploader, "/uploads/sign/", {"token": token, "parts": [3]}).status_code == 400
    assert post(uploader, "/uploads/sign/", {"token": token, "parts": [1, 2]}).status_code == 200


def test_s3_status_lists_stored_parts_for_resuming(on_s3: str, uploader: Client) -> None:
    data = b"x" * (PART + 10)
    created = start(uploader, "a.bin", len(data)).json()
    signed = post(uploader, "/uploads/sign/", {"token": created["token"], "parts": [2]}).json()
    put_parts(signed["urls"], data)
    status = post(uploader, "/uploads/status/", {"token": created["token"]}).json()
    assert status["stored"] == [{"number": 2, "size": 10}]
    missing = post(uploader, "/uploads/complete/", {"token": created["token"]})
    assert missing.status_code == 409


def test_s3_parts_larger_than_declared_are_refused_and_aborted(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    created = start(uploader, "a.bin", 10).json()
    signed = post(uploader, "/uploads/sign/", {"token": created["token"], "parts": [1]}).json()
    put_parts(signed["urls"], b"y" * 4000)  # part 1 holds 4000 bytes, 10 were declared
    answer = post(uploader, "/uploads/complete/", {"token": created["token"]})
    assert answer.status_code == 413
    assert s3_server.boto3().list_multipart_uploads(Bucket=on_s3).get("Uploads", []) == []


def test_s3_staged_object_changed_after_completion_is_refused(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    value = upload_to_s3(uploader, "a.bin", b"z" * 100)
    key = signing.loads(value, salt="stowage.uploads.staged")["key"]
    s3_server.boto3().put_object(
        Bucket=on_s3, Key=key, Body=b"other" * 1000, ContentType="text/html"
    )
    with pytest.raises(RefusedUpload, match="5000 bytes"):
        load_staged(value)
    field = DirectUploadField()  # the refused object was deleted
    with pytest.raises(ValidationError, match="upload it again"):
        field.clean(StagedValue(value))


def test_s3_abort_drops_the_upload(on_s3: str, uploader: Client, s3_server: MotoServer) -> None:
    token = start(uploader, "a.bin", 10).json()["token"]
    assert s3_server.boto3().list_multipart_uploads(Bucket=on_s3).get("Uploads")
    assert post(uploader, "/uploads/abort/", {"token": token}).status_code == 200
    assert s3_server.boto3().list_multipart_uploads(Bucket=on_s3).get("Uploads", []) == []


class RecordingS3Storage(S3Storage):
    """A project's storage with its own ``_save``, which a direct upload must run."""

    saved: ClassVar[list[str]] = []

    def _save(self, name: str, content: Any) -> str:
        RecordingS3Storage.saved.append(name)
        return str(super()._save(name, content))


def _storage_with(settings: Any, s3_server: MotoServer, bucket: str, **options: Any) -> Any:
    backend = options.pop("backend", "stowage.S3Storage")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": backend, "OPTIONS": {**s3_server.options(bucket), **options}},
    }
    return storages["default"]


@pytest.mark.parametrize(
    ("options", "name", "declared", "expected", "streamed"),
    [
        # The configured upload parameters reach the file, as on any save: S3 copies
        # with them.
        (
            {"object_parameters": {"CacheControl": "max-age=60", "Metadata": {"by": "form"}}},
            "docs/report.bin",
            "application/octet-stream",
            {"CacheControl": "max-age=60", "Metadata": {"by": "form"}},
            False,
        ),
        # The name chooses the Content-Type, as on any save.
        ({}, "docs/table.csv", "application/octet-stream", {"ContentType": "text/csv"}, False),
        # gzip compresses what it covers: the bytes go through the storage's save.
        ({"gzip": True}, "docs/style.css", "text/css", {"ContentEncoding": "gzip"}, True),
        # Nothing to add: the staged object is copied as it is.
        ({"gzip": True}, "docs/report.bin", "application/octet-stream", {}, False),
    ],
)
def test_s3_a_direct_upload_is_stored_as_a_save_of_its_name_would_be(
    on_s3: str,
    uploads_settings: Any,
    uploader: Client,
    s3_server: MotoServer,
    options: dict[str, Any],
    name: str,
    declared: str,
    expected: dict[str, Any],
    streamed: bool,
) -> None:
    storage = _storage_with(uploads_settings, s3_server, on_s3, **options)
    data = b"body { color: red }\n" * 4096
    staged = load_staged(upload_to_s3(uploader, name.rsplit("/", 1)[-1], data, declared))
    opened = type(storage).open
    with mock.patch.object(type(storage), "open", autospec=True, side_effect=opened) as read:
        assert storage.save(name, staged) == name
    assert read.called is streamed
    client = s3_server.boto3()
    head = client.head_object(Bucket=on_s3, Key=name)
    assert {key: head.get(key) for key in expected} == expected
    with storage.open(name) as handle:
        assert handle.read() == data
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=on_s3).get("Contents", [])]
    assert keys == [name]  # the staged object is gone


def test_s3_the_staged_object_is_encrypted_as_the_storages_objects_are(
    on_s3: str, uploads_settings: Any, uploader: Client, s3_server: MotoServer
) -> None:
    storage = _storage_with(uploads_settings, s3_server, on_s3, server_side_encryption="AES256")
    value = upload_to_s3(uploader, "report.bin", b"s" * 100)
    client = s3_server.boto3()
    staged = client.head_object(Bucket=on_s3, Key=ticket_of_staged(value))
    assert staged["ServerSideEncryption"] == "AES256"
    assert storage.save("docs/report.bin", load_staged(value)) == "docs/report.bin"
    saved = client.head_object(Bucket=on_s3, Key="docs/report.bin")
    assert saved["ServerSideEncryption"] == "AES256"


def ticket_of_staged(value: str) -> str:
    return str(signing.loads(value, salt="stowage.uploads.staged")["key"])


def test_s3_a_direct_upload_runs_the_storages_own_save(
    on_s3: str, uploads_settings: Any, uploader: Client, s3_server: MotoServer
) -> None:
    backend = f"{__name__}.RecordingS3Storage"
    storage = _storage_with(uploads_settings, s3_server, on_s3, backend=backend)
    RecordingS3Storage.saved.clear()
    staged = load_staged(upload_to_s3(uploader, "report.bin", b"r" * 100))
    assert storage.save("docs/report.bin", staged) == "docs/report.bin"
    assert RecordingS3Storage.saved == ["docs/report.bin"]
    assert storage.open("docs/report.bin").read() == b"r" * 100


def test_field_refuses_a_forged_reference(on_s3: str) -> None:
    field = DirectUploadField()
    with pytest.raises(ValidationError, match="invalid or expired"):
        field.clean(StagedValue("forged:value"))


# -- management commands -----------------------------------------------------------------


def test_cors_prints_and_applies_rules(on_s3: str, s3_server: MotoServer, capsys: Any) -> None:
    call_command("stowage", "cors", "--origin", "https://site.example", "--apply")
    out = capsys.readouterr().out
    rules = json.loads(out[: out.rindex("}") + 1])["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://site.example"]
    assert rules[0]["AllowedMethods"] == ["PUT"]
    stored = s3_server.boto3().get_bucket_cors(Bucket=on_s3)["CORSRules"]
    assert stored[0]["AllowedOrigins"] == ["https://site.example"]
    assert stored[0]["ExposeHeaders"] == ["ETag"]


def test_cors_needs_an_origin(on_s3: str) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="origins"):
        call_command("stowage", "cors")


def test_uploads_lists_and_cleans_leftovers(
    on_s3: str, uploader: Client, s3_server: MotoServer, capsys: Any
) -> None:
    start(uploader, "pending.bin", 10)
    upload_to_s3(uploader, "unsubmitted.bin", b"q" * 10)
    call_command("stowage", "uploads")
    out = capsys.readouterr().out
    assert "2 leftover(s), 0 removed." in out
    # moto dates every multipart upload 2010-11-10, so only the staged object is recent.
    call_command("stowage", "uploads", "--clean", "--older-than", "1")
    out = capsys.readouterr().out
    assert "pending.bin removed" in out
    assert "unsubmitted.bin removed" not in out
    assert "1 removed" in out
    call_command("stowage", "uploads", "--clean", "--older-than", "0")
    assert "1 leftover(s), 1 removed." in capsys.readouterr().out
    client = s3_server.boto3()
    assert client.list_multipart_uploads(Bucket=on_s3).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=on_s3).get("KeyCount") == 0


# -- tus -----------------------------------------------------------------------------------


def test_tus_protocol_on_memory_storage(on_memory: None, uploader: Client) -> None:
    options = uploader.options("/uploads/tus/")
    assert options.status_code == 204
    assert options["Tus-Version"] == "1.0.0"
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {
            "filename": "t.bin",
            "filetype": "application/octet-stream",
            "policy": policy(),
        }.items()
    )
    created = uploader.post(
        "/uploads/tus/",
        headers={"Upload-Length": "10", "Upload-Metadata": meta, "Tus-Resumable": "1.0.0"},
    )
    assert created.status_code == 201
    location = created["Location"]
    token = location.rsplit("/", 1)[1]

    def patch(offset: int, body: bytes) -> Any:
        return uploader.generic(
            "PATCH",
            location,
            body,
            content_type="application/offset+octet-stream",
            headers={"Upload-Offset": str(offset)},
        )

    assert patch(0, b"01234").status_code == 204
    assert patch(0, b"01234").status_code == 409  # the offset moved on
    assert uploader.head(location)["Upload-Offset"] == "5"
    assert patch(5, b"56789EXTRA").status_code == 413  # past Upload-Length
    assert uploader.head(location)["Upload-Offset"] == "5"
    assert post(uploader, "/uploads/complete/", {"token": token}).status_code == 409
    assert patch(5, b"56789")["Upload-Offset"] == "10"
    value = post(uploader, "/uploads/complete/", {"token": token}).json()["value"]
    staged = DirectUploadField().clean(StagedValue(value))
    staged_path = staged.temporary_file_path()
    names = [storages["default"].save("docs/t.bin", staged)]
    again = load_staged(upload_tus(uploader, b"0123456789"))
    names.append(storages["default"].save("docs/t.bin", again))
    assert names[0] == "docs/t.bin"
    assert names[1].startswith("docs/t_")
    for name in names:
        with storages["default"].open(name) as handle:
            assert handle.read() == b"0123456789"
    assert not os.path.exists(staged_path)  # the staged file is gone once saved


def test_tus_chunk_sent_twice_at_once_is_appended_once(tmp_path: Any) -> None:
    """A browser resending a chunk it thinks lost must not get it stored twice."""
    from stowage import MemoryStorage
    from stowage.uploads.sessions import Ticket, TusSession

    options = dataclasses.replace(upload_settings(), TEMP_DIR=str(tmp_path))
    session = TusSession(MemoryStorage(), "default", options)
    key = session.staging_key("1", "t.bin")
    ticket = session.start(Ticket("default", "tus", key, "", "t.bin", 10, "x/y", "1", 10))
    first_in, go_on = threading.Event(), threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b"aaa"
        first_in.set()
        go_on.wait(10)
        yield b"aa"

    writer = concurrent.futures.ThreadPoolExecutor(1).submit(session.append, ticket, 0, slow_body())
    assert first_in.wait(10)
    with pytest.raises(RefusedUpload) as second:
        session.append(ticket, 0, iter([b"bbbbb"]))
    assert second.value.status == 409
    go_on.set()
    assert writer.result(10) == 5
    assert session.path(ticket).read_bytes() == b"aaaaa"
    with pytest.raises(RefusedUpload, match="does not match"):
        session.append(ticket, 0, iter([b"bbbbb"]))
    assert session.append(ticket, 5, iter([b"ccccc"])) == 10


def upload_tus(client: Client, data: bytes) -> str:
    created = start(client, "t.bin", len(data)).json()
    assert created["kind"] == "tus"
    patched = client.generic(
        "PATCH",
        created["location"],
        data,
        content_type="application/offset+octet-stream",
        headers={"Upload-Offset": "0"},
    )
    assert patched.status_code == 204
    return str(post(client, "/uploads/complete/", {"token": created["token"]}).json()["value"])


def test_a_form_shown_again_keeps_the_finished_upload(on_memory: None, uploader: Client) -> None:
    from django import forms

    class Form(forms.Form):
        title = forms.CharField()
        file = DirectUploadField()

    value = upload_tus(uploader, b"kept")
    form = Form(data={"title": "", "file-staged": value}, files={})
    assert not form.is_valid()
    assert list(form.errors) == ["title"]
    html = str(form["file"])
    assert f'name="file-staged" value="{value}"' in html
    again = Form(data={"title": "T", "file-staged": value}, files={})
    assert again.is_valid(), again.errors
    assert isinstance(again.cleaned_data["file"], StagedUpload)


def test_plain_file_post_still_works_and_is_limited() -> None:
    field = DirectUploadField(max_size=5, content_types=["text/*"])
    with pytest.raises(ValidationError, match="too large"):
        field.clean(ContentFile(b"123456", name="a.txt"))
    from django.core.files.uploadedfile import SimpleUploadedFile

    with pytest.raises(ValidationError, match="not allowed"):
        field.clean(SimpleUploadedFile("a.png", b"123", content_type="image/png"))
    ok = SimpleUploadedFile("a.txt", b"123", content_type="text/plain")
    assert field.clean(ok) is ok
