"""Direct uploads that complete at the name the form field asks for, on moto's S3.

``DirectUploadField(upload_to=...)``: the name is reserved when the upload
starts and the browser's multipart upload completes there, so saving the
form copies nothing. The test client plays the browser.
"""

# The fixtures come from the module of the other direct-upload tests.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.test import Client

from stowage.exceptions import AlreadyExists, ServiceError
from stowage.forms import DirectUploadField, DirectUploadWidget
from stowage.uploads.s3 import S3Session
from stowage.uploads.sessions import RefusedUpload
from stowage.uploads.staged import StagedUpload, load_staged
from stowage.uploads.views import sign_policy
from tests.servers.moto import MotoServer
from tests.unit.test_direct_uploads import (  # noqa: F401 - fixtures
    PART,
    _storage_with,
    make_user,
    on_s3,
    post,
    put_parts,
    ticket_of,
    uploader,
    uploads_settings,
    urlpatterns,
)

pytestmark = [pytest.mark.urls("tests.unit.test_direct_uploads"), pytest.mark.django_db]

DATA = bytes(range(256)) * (PART // 256 + 3)  # two parts, the last short


def begin(client: Client, name: str, upload_to: str | None = "docs/") -> dict[str, Any]:
    policy = sign_policy("default", 40 * PART, [], upload_to)
    answer = post(
        client,
        "/uploads/",
        {"policy": policy, "name": name, "size": len(DATA), "type": "application/octet-stream"},
    )
    assert answer.status_code == 201, answer.content
    return dict(answer.json())


def send(client: Client, started: dict[str, Any]) -> str:
    token = started["token"]
    parts = list(range(1, started["part_count"] + 1))
    signed = post(client, "/uploads/sign/", {"token": token, "parts": parts})
    put_parts(signed.json()["urls"], DATA)
    done = post(client, "/uploads/complete/", {"token": token})
    assert done.status_code == 200, done.content
    return str(done.json()["value"])


def keys(server: MotoServer, bucket: str) -> list[str]:
    listed = server.boto3().list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def pending(server: MotoServer, bucket: str) -> list[str]:
    return [
        u["Key"] for u in server.boto3().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    ]


def staged_files(server: MotoServer, bucket: str) -> list[str]:
    return [k for k in keys(server, bucket) if k.startswith("stowage-staging/")]


def test_the_upload_completes_at_the_name_and_saving_it_copies_nothing(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    storage = storages["default"]
    started = begin(uploader, "report.bin")
    # The name is taken from the start: a save meanwhile gets another one.
    assert storage.size("docs/report.bin") == 0
    assert storage.save("docs/report.bin", ContentFile(b"other")) != "docs/report.bin"
    value = send(uploader, started)
    assert pending(s3_server, on_s3) == []
    staged = load_staged(value)
    with mock.patch.object(S3Session, "copier") as copier:
        assert storage.save("docs/report.bin", staged) == "docs/report.bin"
    assert not copier.called
    with storage.open("docs/report.bin") as handle:
        assert handle.read() == DATA
    # Only the claim is left under the staging prefix: the reference is spent.
    assert [k.rsplit("/", 1)[1] for k in staged_files(s3_server, on_s3)] == ["@claimed"]
    with pytest.raises(RefusedUpload, match="saved already"):
        load_staged(value)
    with pytest.raises(AlreadyExists, match="submitted twice"):
        storage.save("docs/report.bin", staged)


def test_two_uploads_of_one_name_reserve_two_names(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    storage = storages["default"]
    first, second = begin(uploader, "report.bin"), begin(uploader, "report.bin")
    targets = [ticket_of(started["token"])["to"] for started in (first, second)]
    assert targets[0] == "docs/report.bin"
    assert targets[1].startswith("docs/report_")
    values = [send(uploader, started) for started in (second, first)]
    saved = [storage.save("docs/report.bin", load_staged(value)) for value in values]
    assert saved == [targets[1], "docs/report.bin"]
    for name in saved:
        assert storage.open(name).read() == DATA


def test_the_folder_is_the_model_fields_strftime_pattern(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    name = dt.datetime.now().strftime("docs/%Y/report.bin")
    value = send(uploader, begin(uploader, "report.bin", upload_to="docs/%Y/"))
    assert storages["default"].save(name, load_staged(value)) == name


def test_a_save_under_another_name_copies_and_frees_the_reserved_one(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    storage = storages["default"]
    value = send(uploader, begin(uploader, "report.bin"))
    assert storage.save("other/report.bin", load_staged(value)) == "other/report.bin"
    assert storage.open("other/report.bin").read() == DATA
    assert keys(s3_server, on_s3) == ["other/report.bin"]


def test_a_reserved_name_longer_than_the_model_allows_is_copied_to_a_shorter_one(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    storage = storages["default"]
    first = begin(uploader, "report.bin")
    second = begin(uploader, "report.bin")
    target = ticket_of(second["token"])["to"]
    saved = storage.save(
        "docs/report.bin", load_staged(send(uploader, second)), max_length=len(target) - 1
    )
    assert len(saved) < len(target)
    assert storage.open(saved).read() == DATA
    assert not storage.exists(target)
    assert post(uploader, "/uploads/abort/", {"token": first["token"]}).status_code == 200
    assert keys(s3_server, on_s3) == [saved]


def test_abort_frees_the_name_and_an_abort_after_the_save_does_nothing(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    storage = storages["default"]
    started = begin(uploader, "report.bin")
    assert post(uploader, "/uploads/abort/", {"token": started["token"]}).status_code == 200
    assert not storage.exists("docs/report.bin")
    assert pending(s3_server, on_s3) == []
    assert staged_files(s3_server, on_s3) == []
    started = begin(uploader, "report.bin")
    assert storage.save("docs/report.bin", load_staged(send(uploader, started))) == (
        "docs/report.bin"
    )
    assert post(uploader, "/uploads/abort/", {"token": started["token"]}).status_code == 200
    assert storage.open("docs/report.bin").read() == DATA


def test_the_cleanup_frees_unsaved_reservations_and_keeps_saved_files(
    on_s3: str, uploader: Client, s3_server: MotoServer, capsys: Any
) -> None:
    storage = storages["default"]
    begin(uploader, "unsent.bin")
    send(uploader, begin(uploader, "unsaved.bin"))
    saved = storage.save("docs/kept.bin", load_staged(send(uploader, begin(uploader, "kept.bin"))))
    # A marker the server did not sign (any object of that name) frees nothing.
    s3_server.boto3().put_object(
        Bucket=on_s3,
        Key="stowage-staging/x/y/@reserved",
        Body=signing.dumps({"k": "docs/kept.bin", "u": "x"}, salt="elsewhere").encode(),
    )
    call_command("stowage", "uploads", "--clean", "--older-than", "0")
    out = capsys.readouterr().out
    assert "4 leftover(s), 4 removed." in out
    assert [line.split("\t")[0] for line in out.splitlines()[:-1]].count("reserved") == 3
    assert keys(s3_server, on_s3) == [saved]
    assert pending(s3_server, on_s3) == []
    assert storage.open(saved).read() == DATA


@pytest.mark.parametrize(
    "options",
    [
        {"file_overwrite": True},  # a save replaces the name: reserving it early would too
        {"gzip": True, "gzip_content_types": ["application/octet-stream"]},  # a save compresses
    ],
)
def test_where_one_upload_cannot_store_what_a_save_would_it_is_staged(
    on_s3: str,
    uploads_settings: Any,
    uploader: Client,
    s3_server: MotoServer,
    options: dict[str, Any],
) -> None:
    storage = _storage_with(uploads_settings, s3_server, on_s3, **options)
    started = begin(uploader, "report.bin")
    assert ticket_of(started["token"])["to"] == ""
    assert not storage.exists("docs/report.bin")
    staged = load_staged(send(uploader, started))
    assert isinstance(staged, StagedUpload)
    saved = storage.save("docs/report.bin", staged)
    assert storage.open(saved).read() == DATA


def test_the_reserved_object_gets_the_headers_a_save_stores(
    on_s3: str, uploads_settings: Any, uploader: Client, s3_server: MotoServer
) -> None:
    parameters = {"CacheControl": "max-age=60", "Metadata": {"by": "form"}}
    storage = _storage_with(
        uploads_settings,
        s3_server,
        on_s3,
        object_parameters=parameters,
        server_side_encryption="AES256",
    )
    value = send(uploader, begin(uploader, "report.bin"))
    assert storage.save("docs/report.bin", load_staged(value)) == "docs/report.bin"
    head = s3_server.boto3().head_object(Bucket=on_s3, Key="docs/report.bin")
    assert head["CacheControl"] == "max-age=60"
    assert head["Metadata"] == {"by": "form"}
    assert head["ServerSideEncryption"] == "AES256"


def test_the_field_refuses_a_callable_upload_to() -> None:
    with pytest.raises(ImproperlyConfigured, match="upload_to must be a string"):
        DirectUploadField(upload_to=lambda instance, name: name)  # type: ignore[arg-type]


def test_the_widget_signs_the_folder_into_its_policy() -> None:
    widget = DirectUploadField(upload_to="docs/%Y/").widget
    assert isinstance(widget, DirectUploadWidget)
    html = widget.render("file", None)
    policy = html.split('data-policy="', 1)[1].split('"', 1)[0]
    assert signing.loads(policy, salt="stowage.uploads.policy")["d"] == "docs/%Y/"


def test_the_cleanup_keeps_a_file_claimed_by_a_save_that_stopped_before_its_marker_went(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    started = begin(uploader, "report.bin")
    send(uploader, started)
    marker = ticket_of(started["token"])["key"]
    s3_server.boto3().put_object(Bucket=on_s3, Key=marker.replace("@reserved", "@claimed"))
    for _ in range(2):
        call_command("stowage", "uploads", "--clean", "--older-than", "0")
    assert keys(s3_server, on_s3) == ["docs/report.bin"]
    assert storages["default"].open("docs/report.bin").read() == DATA


def test_a_start_that_fails_after_the_reservation_frees_the_name(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    with mock.patch.object(S3Session, "mark", side_effect=ServiceError("the service failed")):
        answer = post(
            uploader,
            "/uploads/",
            {
                "policy": sign_policy("default", 40 * PART, [], "docs/"),
                "name": "report.bin",
                "size": len(DATA),
                "type": "application/octet-stream",
            },
        )
    assert answer.status_code == 502
    assert keys(s3_server, on_s3) == []
    assert pending(s3_server, on_s3) == []
