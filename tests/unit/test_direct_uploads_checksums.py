"""S3 direct uploads whose parts carry their CRC32, signed into each part's URL, on moto.

The test client plays the browser: it computes each part's CRC32 as the
page does, asks for the part's URL with it and sends the header.
"""

from __future__ import annotations

import base64
import io
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from stowage.checks import check_upload_cors
from stowage.uploads import s3 as s3_uploads
from stowage.uploads.staged import load_staged
from stowage.uploads.views import sign_policy
from tests.servers.moto import MotoServer
from tests.unit.test_direct_uploads import (  # noqa: F401 - fixtures
    PART,
    make_user,
    on_s3,
    post,
    ticket_of,
    uploader,
    uploads_settings,
    urlpatterns,
)

# The fixtures come from the module of the other direct-upload tests.
# ruff: noqa: F811

pytestmark = [pytest.mark.urls("tests.unit.test_direct_uploads"), pytest.mark.django_db]

ORIGIN = "http://testserver"  # the test client's: the page's origin as the views see it
DATA = bytes(range(251)) * (PART // 251 + 1000)  # two parts, the last short


@pytest.fixture(autouse=True)
def fresh_cors_rules() -> Iterator[None]:
    s3_uploads._CORS_RULES.clear()
    yield
    s3_uploads._CORS_RULES.clear()


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def begin(client: Client) -> dict[str, Any]:
    policy = sign_policy("default", 40 * PART, [])
    answer = post(
        client,
        "/uploads/",
        {"policy": policy, "name": "a.bin", "size": len(DATA), "type": "application/octet-stream"},
    )
    assert answer.status_code == 201, answer.content
    return dict(answer.json())


def allow_the_site() -> None:
    call_command("stowage", "cors", "--origin", ORIGIN, "--apply", stdout=io.StringIO())


def test_without_a_cors_rule_for_the_header_parts_carry_no_checksum(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    started = begin(uploader)
    assert "checksum" not in started
    assert ticket_of(started["token"])["c"] == ""
    signed = post(uploader, "/uploads/sign/", {"token": started["token"], "parts": [1]})
    assert "x-amz-checksum-crc32" not in urllib.parse.unquote(signed.json()["urls"]["1"])


def test_each_part_url_signs_the_parts_crc32_and_the_object_carries_s3s_checksum(
    on_s3: str, uploader: Client, s3_server: MotoServer
) -> None:
    allow_the_site()
    rules = s3_server.boto3().get_bucket_cors(Bucket=on_s3)["CORSRules"]
    assert rules[0]["AllowedHeaders"] == ["Content-Type", "x-amz-checksum-crc32"]
    started = begin(uploader)
    assert started["checksum"] == "crc32"
    token = started["token"]
    # A part's URL needs the part's CRC32, in base64 of four bytes.
    for checksums in [None, {"1": "not base64!"}, {"1": base64.b64encode(b"12345").decode()}]:
        body = {"token": token, "parts": [1], "checksums": checksums}
        refused = post(uploader, "/uploads/sign/", body)
        assert refused.status_code == 400
        assert "CRC32" in refused.json()["error"]
    for number in (1, 2):
        part = DATA[(number - 1) * PART : number * PART]
        signed = post(
            uploader,
            "/uploads/sign/",
            {"token": token, "parts": [number], "checksums": {str(number): crc32(part)}},
        )
        url = signed.json()["urls"][str(number)]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert "x-amz-checksum-crc32" in query["X-Amz-SignedHeaders"][0].split(";")
        request = urllib.request.Request(
            url,
            data=part,
            method="PUT",
            headers={
                "x-amz-checksum-crc32": crc32(part),
                "Content-Type": "application/octet-stream",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    done = post(uploader, "/uploads/complete/", {"token": token})
    assert done.status_code == 200, done.content
    staged = load_staged(done.json()["value"])
    head = s3_server.boto3().head_object(
        Bucket=on_s3, Key=ticket_of(token)["key"], ChecksumMode="ENABLED"
    )
    # S3's checksum of the object: the CRC32 of its parts' CRC32s (AWS adds "-2").
    sums = b"".join(base64.b64decode(crc32(DATA[i : i + PART])) for i in (0, PART))
    assert head["ChecksumCRC32"].split("-")[0] == crc32(sums)
    with staged.open() as handle:
        assert handle.read() == DATA


def test_the_deploy_check_warns_when_the_rules_admit_uploads_but_not_the_checksum(
    on_s3: str, uploads_settings: Any, s3_server: MotoServer
) -> None:
    uploads_settings.STOWAGE_DIRECT_UPLOADS = {
        **uploads_settings.STOWAGE_DIRECT_UPLOADS,
        "CORS_ORIGINS": [ORIGIN],
    }
    s3_server.boto3().put_bucket_cors(
        Bucket=on_s3,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [ORIGIN],
                    "AllowedMethods": ["PUT"],
                    "AllowedHeaders": ["Content-Type"],
                    "ExposeHeaders": ["ETag"],
                }
            ]
        },
    )
    [message] = check_upload_cors()
    assert message.id == "stowage.W009"
    assert "x-amz-checksum-crc32" in message.msg
    allow_the_site()
    assert check_upload_cors() == []
