"""Direct uploads to GCS (fake-gcs-server) and Azure (Azurite), and the CORS command and check.

The test client plays the browser: it asks the views for a plan, then
sends the bytes to the service as the widget does (GCS: chunks PUT to the
session URI with Content-Range; Azure: Put Block under the SAS URL).

What fake-gcs-server 1.54 does not do, and so is not tested here: it does
not enforce ``X-Upload-Content-Length`` (the server's own check refuses the
extra bytes instead), it finalises an upload on any status query
(``Content-Range: bytes */SIZE``) whatever it holds, it ignores
``ifGenerationMatch`` on rewrites, and it keeps no bucket ``cors``
metadata (a PATCH of it succeeds and changes nothing).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core import signing
from django.core.files.storage import storages
from django.core.management import call_command
from django.test import Client

from stowage.checks import check_upload_cors
from stowage.exceptions import UnsupportedOperation
from stowage.uploads.azure import block_id, block_number
from stowage.uploads.config import upload_settings
from stowage.uploads.gcs import chunk_size, query_status
from stowage.uploads.sessions import session_for
from stowage.uploads.staged import load_staged
from tests.servers.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from tests.servers.fake_gcs import FakeGCS
from tests.servers.moto import MotoServer
from tests.unit import test_direct_uploads as s3_and_tus
from tests.unit.test_direct_uploads import policy, post

pytestmark = [pytest.mark.urls("tests.unit.test_direct_uploads"), pytest.mark.django_db]

# The S3 and tus tests' fixtures: settings, users, a signed-in client.
uploads_settings = s3_and_tus.uploads_settings
make_user = s3_and_tus.make_user
uploader = s3_and_tus.uploader

MiB = 1024 * 1024
PART = 5 * MiB
ORIGIN = "http://127.0.0.1:8000"
STATIC = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}


@pytest.fixture
def on_gcs(uploads_settings: Any, fake_gcs: FakeGCS, gcs_bucket: str) -> str:
    uploads_settings.STORAGES = {
        "default": {
            "BACKEND": "stowage.GCSStorage",
            "OPTIONS": {
                "bucket_name": gcs_bucket,
                "api_endpoint": fake_gcs.url,
                "anonymous": True,
                "retry_timeout": 5,
            },
        },
        "staticfiles": STATIC,
    }
    return gcs_bucket


@pytest.fixture
def on_azure(uploads_settings: Any, azurite: Azurite, azure_container: str) -> str:
    uploads_settings.STORAGES = {
        "default": {"BACKEND": "stowage.AzureStorage", "OPTIONS": azurite.options(azure_container)},
        "staticfiles": STATIC,
    }
    return azure_container


def send(method: str, url: str, data: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    """Send one request as the browser would; return (status, headers)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def create(client: Client, name: str, size: int, **kw: Any) -> dict[str, Any]:
    answer = post_with_origin(client, name, size, **kw)
    assert answer.status_code == 201, answer.content
    return dict(answer.json())


def post_with_origin(client: Client, name: str, size: int, **kw: Any) -> Any:
    body = {"policy": policy(**kw), "name": name, "size": size, "type": "application/octet-stream"}
    return client.post(
        "/uploads/", json.dumps(body), content_type="application/json", HTTP_ORIGIN=ORIGIN
    )


def complete(client: Client, token: str) -> Any:
    return post(client, "/uploads/complete/", {"token": token})


def key_of(value: str) -> str:
    return str(signing.loads(value, salt="stowage.uploads.staged")["key"])


# -- GCS ----------------------------------------------------------------------------------


def put_chunks(plan: dict[str, Any], data: bytes, total: int | None = None) -> list[int]:
    """PUT ``data`` to the session in the plan's chunks; return each answer's status."""
    step, size = plan["chunk_size"], len(data) if total is None else total
    statuses = []
    for offset in range(0, len(data), step):
        chunk = data[offset : offset + step]
        headers = {
            "Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{size}",
            # The browser sends none; urllib would send a form type of its own.
            "Content-Type": "application/octet-stream",
        }
        status, _ = send("PUT", plan["url"], chunk, headers)
        statuses.append(status)
    return statuses


def upload_to_gcs(client: Client, name: str, data: bytes) -> str:
    plan = create(client, name, len(data))
    assert plan["kind"] == "gcs"
    statuses = put_chunks(plan, data)
    assert statuses == [308] * (len(statuses) - 1) + [200]
    done = complete(client, plan["token"])
    assert done.status_code == 200, done.content
    return str(done.json()["value"])


def test_gcs_chunks_are_multiples_of_256_kib() -> None:
    assert chunk_size(5 * MiB) == 5 * MiB
    assert chunk_size(5 * MiB + 1000) == 5 * MiB
    assert chunk_size(1000) == 256 * 1024


def test_gcs_upload_is_staged_verified_and_moved_to_free_names(
    on_gcs: str,
    uploader: Client,
) -> None:
    data = bytes(range(256)) * (PART // 256 * 2 + 7)  # three chunks, the last short
    storage = storages["default"]
    names = []
    for _ in range(2):
        value = upload_to_gcs(uploader, "report.bin", data)
        names.append(storage.save("docs/report.bin", load_staged(value)))
    assert names[0] == "docs/report.bin"
    assert names[1].startswith("docs/report_")
    for name in names:
        with storage.open(name, "rb") as handle:
            assert handle.read() == data
        assert storage.driver.head(storage.key(name)).content_type == "application/octet-stream"  # type: ignore[attr-defined]
    _, files = storage.listdir("")
    assert files == []
    assert sorted(storage.listdir("docs")[1]) == sorted(n.split("/")[1] for n in names)
    assert storage.listdir(upload_settings().STAGING_PREFIX) == ([], [])


def _with_options(settings: Any, **options: Any) -> Any:
    """Give the default storage ``options`` besides its own; return it."""
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], **options}},
    }
    return storages["default"]


def test_gcs_a_direct_upload_gets_the_configured_object_parameters(
    on_gcs: str, uploads_settings: Any, uploader: Client
) -> None:
    parameters = {"cache_control": "max-age=60", "metadata": {"by": "form"}}
    storage = _with_options(uploads_settings, object_parameters=parameters)
    data = b"g" * 1000
    staged = load_staged(upload_to_gcs(uploader, "report.bin", data))
    assert storage.save("docs/report.bin", staged) == "docs/report.bin"
    stored = storage.driver._reader.metadata(storage.key("docs/report.bin"))  # type: ignore[attr-defined]
    assert (stored.get("cacheControl"), stored.get("metadata")) == ("max-age=60", {"by": "form"})
    with storage.open("docs/report.bin", "rb") as handle:
        assert handle.read() == data
    assert storage.listdir(upload_settings().STAGING_PREFIX) == ([], [])


def test_gcs_complete_before_the_last_chunk_is_refused(on_gcs: str, uploader: Client) -> None:
    data = b"a" * (PART + 10)
    plan = create(uploader, "a.bin", len(data))
    assert put_chunks(plan, data[:PART], total=len(data)) == [308]
    answer = complete(uploader, plan["token"])
    assert answer.status_code == 409
    assert "missing" in answer.json()["error"]


def test_gcs_bytes_past_the_declared_size_are_refused_by_the_server(
    on_gcs: str,
    uploader: Client,
) -> None:
    # The real service refuses them (X-Upload-Content-Length); fake-gcs-server
    # takes them, so the server's check by HEAD is what refuses here.
    plan = create(uploader, "a.bin", 10)
    assert put_chunks(plan, b"y" * 4000) == [200]
    answer = complete(uploader, plan["token"])
    assert answer.status_code == 413
    assert "4000 bytes" in answer.json()["error"]
    assert storages["default"].listdir(upload_settings().STAGING_PREFIX) == ([], [])


def test_gcs_too_large_is_refused_before_any_session_starts(
    on_gcs: str,
    uploader: Client,
) -> None:
    answer = post_with_origin(uploader, "big.bin", 40 * MiB + 1)
    assert answer.status_code == 413


def test_gcs_status_query_reports_a_complete_upload(on_gcs: str, uploader: Client) -> None:
    # Sent without a known total, the bytes wait in the session; the status
    # query, naming the total, completes it (fake-gcs-server and GCS agree here).
    plan = create(uploader, "a.bin", 1000)
    status, headers = send(
        "PUT",
        plan["url"],
        b"q" * 1000,
        {"Content-Range": "bytes 0-999/*", "Content-Type": "application/octet-stream"},
    )
    assert (status, headers["Range"]) == (308, "bytes=0-999")
    progress = query_status(plan["url"], 1000, timeout=30)
    assert (progress.offset, progress.complete) == (1000, True)
    assert complete(uploader, plan["token"]).status_code == 200


def test_gcs_abort_cancels_the_session_and_drops_the_object(
    on_gcs: str,
    uploader: Client,
) -> None:
    value = upload_to_gcs(uploader, "a.bin", b"z" * 100)
    plan = create(uploader, "b.bin", 100)
    assert post(uploader, "/uploads/abort/", {"token": plan["token"]}).status_code == 200
    ticket = signing.loads(value, salt="stowage.uploads.staged")
    storage = storages["default"]
    assert storage.exists(ticket["key"])
    token = signing.dumps(ticket, salt="stowage.uploads.ticket", compress=True)
    assert post(uploader, "/uploads/abort/", {"token": token}).status_code == 200
    assert not storage.exists(ticket["key"])


def test_gcs_leftovers_are_listed_and_removed(
    on_gcs: str,
    uploader: Client,
    capsys: Any,
) -> None:
    upload_to_gcs(uploader, "unsubmitted.bin", b"q" * 10)
    call_command("stowage", "uploads")
    assert "1 leftover(s), 0 removed." in capsys.readouterr().out
    call_command("stowage", "uploads", "--clean", "--older-than", "0")
    out = capsys.readouterr().out
    assert "unsubmitted.bin removed" in out
    assert storages["default"].listdir(upload_settings().STAGING_PREFIX) == ([], [])


def test_gcs_cors_command_prints_the_bucket_rule(on_gcs: str, capsys: Any) -> None:
    call_command("stowage", "cors", "--origin", "https://site.example", "--apply")
    out = capsys.readouterr().out
    document = json.loads(out[: out.rindex("}") + 1])
    assert document == {
        "cors": [
            {
                "origin": ["https://site.example"],
                "method": ["PUT"],
                "responseHeader": ["Content-Range", "Range"],
                "maxAgeSeconds": 3600,
            }
        ]
    }
    # fake-gcs-server takes the PATCH and keeps no rules: the check sees none.
    assert "Added to the CORS rules of 'default'." in out


def test_gcs_check_warns_when_the_bucket_has_no_rule_for_the_site(
    on_gcs: str, settings: Any
) -> None:
    settings.STOWAGE_DIRECT_UPLOADS = {**settings.STOWAGE_DIRECT_UPLOADS, "CORS_ORIGINS": [ORIGIN]}
    [message] = check_upload_cors()
    assert message.id == "stowage.W008"
    assert f"{ORIGIN}: no rule allows PUT with headers Content-Range exposing Range" in message.msg


# -- Azure ----------------------------------------------------------------------------


def put_blocks(plan: dict[str, Any], data: bytes, numbers: list[int] | None = None) -> None:
    step = plan["part_size"]
    for number in numbers or range(1, plan["part_count"] + 1):
        chunk = data[(number - 1) * step : number * step]
        url = f"{plan['url']}&comp=block&blockid={block_id(number)}"
        assert send("PUT", url, chunk)[0] == 201


def upload_to_azure(client: Client, name: str, data: bytes) -> str:
    plan = create(client, name, len(data))
    assert plan["kind"] == "azure"
    put_blocks(plan, data, list(reversed(range(1, plan["part_count"] + 1))))
    done = complete(client, plan["token"])
    assert done.status_code == 200, done.content
    return str(done.json()["value"])


def test_azure_block_ids_are_fixed_length_base64_of_the_part_number() -> None:
    assert block_id(1) == "MDAwMDAx"
    assert {len(block_id(n)) for n in (1, 99, 50_000)} == {8}
    assert block_number(block_id(4321)) == 4321
    assert block_number("not base64!") is None
    assert block_number("QUJD") is None  # "ABC"


def test_azure_upload_is_committed_verified_and_moved_to_free_names(
    on_azure: str,
    uploader: Client,
    azurite: Azurite,
) -> None:
    data = bytes(range(256)) * (PART // 256 * 2 + 7)  # three blocks, the last short
    storage = storages["default"]
    names = [
        storage.save("docs/report.bin", load_staged(upload_to_azure(uploader, "report.bin", data)))
        for _ in range(2)
    ]
    assert names[0] == "docs/report.bin"
    assert names[1].startswith("docs/report_")
    container = azurite.client().get_container_client(on_azure)
    for name in names:
        blob = container.get_blob_client(name)
        assert blob.download_blob().readall() == data
        assert blob.get_blob_properties().content_settings.content_type == (
            "application/octet-stream"
        )
    assert sorted(b.name for b in container.list_blobs()) == sorted(names)


def test_azure_a_direct_upload_gets_the_configured_object_parameters(
    on_azure: str, uploads_settings: Any, uploader: Client, azurite: Azurite
) -> None:
    parameters = {"cache_control": "max-age=60", "metadata": {"by": "form"}}
    storage = _with_options(uploads_settings, object_parameters=parameters)
    data = b"a" * 1000
    staged = load_staged(upload_to_azure(uploader, "report.bin", data))
    assert storage.save("docs/report.bin", staged) == "docs/report.bin"
    blob = azurite.client().get_container_client(on_azure).get_blob_client("docs/report.bin")
    properties = blob.get_blob_properties()
    assert properties.content_settings.cache_control == "max-age=60"
    assert properties.metadata == {"by": "form"}
    assert blob.download_blob().readall() == data
    container = azurite.client().get_container_client(on_azure)
    assert [b.name for b in container.list_blobs()] == ["docs/report.bin"]


def test_azure_status_lists_the_blocks_stored(on_azure: str, uploader: Client) -> None:
    data = b"x" * (PART + 10)
    plan = create(uploader, "a.bin", len(data))
    put_blocks(plan, data, [2])
    status = post(uploader, "/uploads/status/", {"token": plan["token"]}).json()
    assert status["stored"] == [{"number": 2, "size": 10}]
    assert status["kind"] == "azure"
    missing = complete(uploader, plan["token"])
    assert missing.status_code == 409


def test_azure_sas_writes_only_the_staging_blob_until_url_expire(
    on_azure: str,
    uploader: Client,
) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    plan = create(uploader, "a.bin", 10)
    after = dt.datetime.now(dt.UTC)
    query = dict(parse_qsl(urlsplit(plan["url"]).query))
    assert (query["sp"], query["sr"]) == ("w", "b")
    expiry = dt.datetime.fromisoformat(query["se"].replace("Z", "+00:00"))
    assert before + dt.timedelta(seconds=600) <= expiry <= after + dt.timedelta(seconds=600)
    assert plan["expires_in"] == 600
    other = plan["url"].replace("/a.bin?", "/other.bin?")
    assert send("PUT", f"{other}&comp=block&blockid={block_id(1)}", b"x")[0] == 403
    assert send("GET", plan["url"])[0] == 403
    assert ACCOUNT_KEY not in json.dumps(plan)


def test_azure_blocks_past_the_declared_size_are_refused_and_dropped(
    on_azure: str,
    uploader: Client,
    azurite: Azurite,
) -> None:
    plan = create(uploader, "a.bin", 10)
    put_blocks(plan, b"y" * 4000, [1])  # block 1 holds 4000 bytes, 10 were declared
    answer = complete(uploader, plan["token"])
    assert answer.status_code == 413
    assert post(uploader, "/uploads/status/", {"token": plan["token"]}).json()["stored"] == []
    assert list(azurite.client().get_container_client(on_azure).list_blobs()) == []


def test_azure_abort_drops_the_blocks(on_azure: str, uploader: Client, azurite: Azurite) -> None:
    plan = create(uploader, "a.bin", PART + 1)
    put_blocks(plan, b"b" * (PART + 1), [1])
    assert post(uploader, "/uploads/abort/", {"token": plan["token"]}).status_code == 200
    assert post(uploader, "/uploads/status/", {"token": plan["token"]}).json()["stored"] == []
    assert list(azurite.client().get_container_client(on_azure).list_blobs()) == []


def test_azure_empty_file(on_azure: str, uploader: Client) -> None:
    value = upload_to_azure(uploader, "empty.bin", b"")
    name = storages["default"].save("docs/empty.bin", load_staged(value))
    assert storages["default"].size(name) == 0


def test_azure_leftovers_are_listed_and_removed(
    on_azure: str,
    uploader: Client,
    capsys: Any,
) -> None:
    upload_to_azure(uploader, "unsubmitted.bin", b"q" * 10)
    call_command("stowage", "uploads", "--clean", "--older-than", "0")
    out = capsys.readouterr().out
    assert "unsubmitted.bin removed" in out
    assert "1 leftover(s), 1 removed." in out
    assert storages["default"].listdir(upload_settings().STAGING_PREFIX) == ([], [])


def test_azure_account_sas_matches_the_sdk() -> None:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes
    from azure.storage.blob._shared.shared_access_signature import SharedAccessSignature

    from stowage.drivers._azure_auth import SAS_VERSION, account_sas

    expiry = "2026-12-03T10:00:00Z"
    ours = account_sas(account=ACCOUNT, account_key=ACCOUNT_KEY, permission="rw", expiry=expiry)
    # The SDK signs with its own newest version unless told ours.
    theirs = SharedAccessSignature(ACCOUNT, ACCOUNT_KEY, x_ms_version=SAS_VERSION).generate_account(
        "b", ResourceTypes(service=True), AccountSasPermissions(read=True, write=True), expiry
    )
    assert dict(parse_qsl(ours)) == dict(parse_qsl(theirs))


def test_azure_cors_command_adds_the_rule_once_and_the_check_follows(
    on_azure: str, azurite: Azurite, settings: Any, capsys: Any
) -> None:
    origin = "http://127.0.0.1:8123"
    settings.STOWAGE_DIRECT_UPLOADS = {**settings.STOWAGE_DIRECT_UPLOADS, "CORS_ORIGINS": [origin]}
    service = azurite.client()
    service.set_service_properties(cors=[])
    [warning] = check_upload_cors()
    assert warning.id == "stowage.W008"
    assert f"{origin}: no rule allows PUT" in warning.msg
    call_command("stowage", "cors", "--apply")
    out = capsys.readouterr().out
    document = json.loads(out[: out.rindex("}") + 1])
    assert document["Cors"] == [
        {
            "AllowedOrigins": origin,
            "AllowedMethods": "PUT",
            "AllowedHeaders": "Content-Type",
            "ExposedHeaders": "",
            "MaxAgeInSeconds": 3600,
        }
    ]
    assert "Added to the CORS rules of 'default'." in out
    [rule] = service.get_service_properties()["cors"]
    assert (rule.allowed_origins, rule.allowed_methods) == (origin, "PUT")
    assert check_upload_cors() == []
    call_command("stowage", "cors", "--apply")
    assert "already allow these uploads" in capsys.readouterr().out
    assert len(service.get_service_properties()["cors"]) == 1
    # Azurite now answers the browser's preflight for that origin, and only for it.
    url = f"{azurite.endpoint}/{on_azure}/x.bin?comp=block"
    preflight = {"Access-Control-Request-Method": "PUT", "Origin": origin}
    assert send("OPTIONS", url, headers=preflight)[0] == 200
    assert send("OPTIONS", url, headers={**preflight, "Origin": "http://evil.example"})[0] == 403
    service.set_service_properties(cors=[])


def test_azure_check_says_nothing_when_the_rules_cannot_be_read(
    uploads_settings: Any,
    azurite: Azurite,
    azure_container: str,
) -> None:
    options = {**azurite.options(azure_container), "account_key": None, "sas_token": "sv=x&sig=y"}
    uploads_settings.STORAGES = {
        "default": {"BACKEND": "stowage.AzureStorage", "OPTIONS": options},
        "staticfiles": STATIC,
    }
    uploads_settings.STOWAGE_DIRECT_UPLOADS = {
        **uploads_settings.STOWAGE_DIRECT_UPLOADS,
        "CORS_ORIGINS": [ORIGIN],
    }
    session = session_for(storages["default"], "default", upload_settings())
    with pytest.raises(UnsupportedOperation, match="account key"):
        session.read_cors()  # type: ignore[attr-defined]
    assert check_upload_cors() == []


# -- S3: the check reads the bucket's rules too ---------------------------------------


def test_s3_check_follows_the_bucket_rules(
    uploads_settings: Any,
    s3_server: MotoServer,
    s3_bucket: str,
) -> None:
    uploads_settings.STORAGES = {
        "default": {"BACKEND": "stowage.S3Storage", "OPTIONS": s3_server.options(s3_bucket)},
        "staticfiles": STATIC,
    }
    uploads_settings.STOWAGE_DIRECT_UPLOADS = {
        **uploads_settings.STOWAGE_DIRECT_UPLOADS,
        "CORS_ORIGINS": [ORIGIN],
    }
    [warning] = check_upload_cors()
    assert "no rule allows PUT with headers Content-Type exposing ETag" in warning.msg
    call_command("stowage", "cors", "--apply")
    assert check_upload_cors() == []
    rules = s3_server.boto3().get_bucket_cors(Bucket=s3_bucket)["CORSRules"]
    assert [r["AllowedOrigins"] for r in rules] == [[ORIGIN]]


def test_the_check_is_a_deployment_check() -> None:
    from django.core.checks import registry

    assert check_upload_cors in registry.registry.get_checks(include_deployment_checks=True)
    assert check_upload_cors not in registry.registry.get_checks()


def test_memory_storage_needs_no_cors(uploads_settings: Any) -> None:
    from django.core.management import CommandError

    uploads_settings.STORAGES = {
        "default": {"BACKEND": "stowage.MemoryStorage"},
        "staticfiles": STATIC,
    }
    with pytest.raises(CommandError, match="needs no CORS"):
        call_command("stowage", "cors", "--origin", ORIGIN)
