"""``manage.py stowage``: ls, cp, sync and check, on local, in-memory and S3 (moto) storages."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from stowage.cli.diagnosis import diagnose
from stowage.cli.progress import (
    PlainProgress,
    Progress,
    RichProgress,
    TqdmProgress,
    make_progress,
)
from stowage.cli.transfer import CHUNK
from stowage.drivers.base import Download, ObjectInfo, Readable
from stowage.drivers.memory import MemoryDriver
from stowage.exceptions import AccessDenied, ServiceError, ServiceUnavailable
from stowage.management.commands.stowage import Command
from tests.servers._process import free_port
from tests.servers.moto import MotoServer

MiB = 1024 * 1024
FAULTY = "tests.test_commands:FaultyDriver"
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|-)\s+(\S+(?: \S+)?)\s+(\S.*)$")


class FaultyDriver(MemoryDriver):
    """An in-memory driver that fails on purpose for names saying how.

    ``broken`` names cannot be read, ``short`` names read back cut short,
    ``corrupt`` names are stored with their first byte changed.
    """

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        if "broken" in key:
            raise ServiceUnavailable(f"reading {key!r}: connection reset by the service")
        download = super().get(key, start=start, end=end)
        if "short" in key:
            whole = b"".join(download)
            return Download(download.info, [whole[: len(whole) // 2]])
        return download

    def put(self, key: str, stream: Readable, **kwargs: Any) -> ObjectInfo:
        if "corrupt" in key:
            data = bytearray(stream.read())
            data[0] ^= 0xFF
            stream = io.BytesIO(bytes(data))
        return super().put(key, stream, **kwargs)


class RecordingReads(FileSystemStorage):
    """A plain Django storage that records the size of every read of its files."""

    sizes: list[int] = []

    def open(self, name: str, mode: str = "rb") -> File[Any]:
        # File needs only read() and close() of what it wraps.
        return File(cast(Any, _RecordedReads(super().open(name, mode))), name)


class _RecordedReads:
    def __init__(self, handle: File[Any]) -> None:
        self.handle = handle

    def read(self, size: int = -1) -> bytes:
        RecordingReads.sizes.append(size)
        data: bytes = self.handle.read(size)
        return data

    def close(self) -> None:
        self.handle.close()


class ReadOnlyStorage(FileSystemStorage):
    """A plain Django storage on a read-only file system."""

    def _save(self, name: str, content: Any) -> str:
        raise OSError(errno.EROFS, "Read-only file system", name)


def local(path: Path) -> dict[str, Any]:
    return {"BACKEND": "stowage.LocalStorage", "OPTIONS": {"location": str(path)}}


def memory(**options: Any) -> dict[str, Any]:
    return {"BACKEND": "stowage.MemoryStorage", "OPTIONS": options}


def faulty() -> dict[str, Any]:
    options = {"driver": FAULTY, "namespace": f"faulty-{uuid.uuid4().hex}"}
    return {"BACKEND": "stowage.Storage", "OPTIONS": options}


def s3(server: MotoServer, bucket: str, **options: Any) -> dict[str, Any]:
    return {"BACKEND": "stowage.S3Storage", "OPTIONS": {**server.options(bucket), **options}}


@pytest.fixture
def configure() -> Iterator[Any]:
    """Return a function that sets settings.STORAGES until the test ends."""
    active: list[override_settings] = []

    def apply(**aliases: Mapping[str, Any]) -> None:
        override = override_settings(STORAGES=aliases)
        override.enable()
        active.append(override)

    yield apply
    for override in reversed(active):
        override.disable()


def stowage(*args: str) -> tuple[str, str]:
    """Run ``manage.py stowage *args`` and return its output and error output."""
    out, err = io.StringIO(), io.StringIO()
    call_command("stowage", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failing(*args: str) -> tuple[str, str, str]:
    """Run a command expected to fail; return its output, error output and the error."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("stowage", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), str(failure.value)


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def s3_objects(server: MotoServer, bucket: str) -> dict[str, bytes]:
    client = server.boto3()
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listing
    }


def summary(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(("Copied", "Would copy")))


# -- help ------------------------------------------------------------------------------


def parser_help(*args: str, capsys: pytest.CaptureFixture[str]) -> str:
    parser = Command().create_parser("manage.py", "stowage")
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    text = parser_help(capsys=capsys)
    for name in ("ls", "cp", "sync", "check"):
        assert re.search(rf"^\s+{name}\s+\S", text, re.MULTILINE), name


@pytest.mark.parametrize(
    ("subcommand", "expected", "absent"),
    [
        ("ls", ["ALIAS[:PREFIX]", "--recursive", "-H, --human-readable", "settings.STORAGES"], []),
        (
            "cp",
            ["--jobs", "--dry-run", "--verify", "--size-only", "SHA-256", "resumes"],
            ["--delete"],
        ),
        ("sync", ["--delete", "--jobs", "--dry-run", "DST_ALIAS[:PREFIX]"], []),
        ("check", ["ALIAS", "clock skew", "read-only", "--verbosity"], ["--jobs"]),
    ],
)
def test_each_subcommand_explains_itself(
    subcommand: str, expected: list[str], absent: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = parser_help(subcommand, capsys=capsys)
    for fragment in expected:
        assert fragment in text
    for fragment in absent:
        assert fragment not in text


def test_manage_py_help_runs_in_a_real_process() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "django", "stowage", "cp", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "SRC_ALIAS[:PREFIX] DST_ALIAS[:PREFIX]" in done.stdout


def test_unknown_alias_names_the_configured_ones(configure: Any, tmp_path: Path) -> None:
    configure(media=local(tmp_path))
    _, _, error = failing("ls", "nope")
    assert "'nope'" in error
    assert "media" in error


# -- ls ---------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    write_tree(root, {"a.txt": b"hello", "sub/b.bin": b"x" * 2048, "sub/deep/c.txt": b"c"})
    return root


def test_ls_lists_one_level_with_sizes_times_and_directories(configure: Any, tree: Path) -> None:
    configure(media=local(tree))
    out, _ = stowage("ls", "media")
    lines = out.splitlines()
    assert len(lines) == 3
    modified, size, name = LINE.fullmatch(lines[0]).groups()  # type: ignore[union-attr]
    assert (size, name) == ("5", "a.txt")
    assert modified != "-"
    assert lines[1].split() == ["DIR", "sub/"]
    assert lines[2] == "media: 1 file, 1 directory, 5 bytes"


def test_ls_recursive_human_readable(configure: Any, tree: Path) -> None:
    configure(media=local(tree))
    out, _ = stowage("ls", "media:sub", "-r", "-H")
    rows = [LINE.fullmatch(line).groups()[1:] for line in out.splitlines()[:-1]]  # type: ignore[union-attr]
    assert sorted(rows) == [("1 B", "sub/deep/c.txt"), ("2.0 KiB", "sub/b.bin")]
    assert out.splitlines()[-1] == "media:sub: 2 files, 2.0 KiB"


def test_ls_of_a_single_file_and_of_nothing(configure: Any, tree: Path) -> None:
    configure(media=local(tree))
    out, _ = stowage("ls", "media:sub/b.bin")
    assert LINE.fullmatch(out.splitlines()[0]).groups()[1:] == ("2048", "sub/b.bin")  # type: ignore[union-attr]
    out, _ = stowage("ls", "media:missing")
    assert out == "media:missing: 0 files, 0 bytes\n"


def test_ls_on_any_django_storage_matches_the_fast_listing(configure: Any, tree: Path) -> None:
    plain = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    configure(fast=local(tree), plain={**plain, "OPTIONS": {"location": str(tree)}})
    for args in ([], ["-r"], ["-H"]):
        fast, _ = stowage("ls", "fast", *args)
        generic, _ = stowage("ls", "plain", *args)
        assert fast.replace("fast:", "plain:") == generic


def test_ls_of_a_stowage_storage_reads_only_the_listing(
    configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(mem=memory())
    storages["mem"].save("d/x.txt", ContentFile(b"123"))

    def no_head(self: Any, key: str) -> ObjectInfo:
        raise AssertionError("ls asked for one object's info")

    monkeypatch.setattr(MemoryDriver, "head", no_head)
    out, _ = stowage("ls", "mem", "-r")
    assert LINE.fullmatch(out.splitlines()[0]).groups()[1:] == ("3", "d/x.txt")  # type: ignore[union-attr]


# -- cp / sync between local and memory storages ----------------------------------------


def test_cp_local_to_memory_copies_verifies_and_resumes(configure: Any, tree: Path) -> None:
    configure(media=local(tree), mem=memory())
    out, err = stowage("cp", "media", "mem:backup", "-v", "2")
    assert err == ""
    assert summary(out).startswith("Copied 3 files (2.0 KiB) from media to mem:backup; 0 already")
    assert "verified 3 by md5" in out
    assert "copied sub/b.bin -> backup/sub/b.bin (verified: md5)" in out
    mem = storages["mem"]
    assert mem.open("backup/sub/deep/c.txt").read() == b"c"
    out, _ = stowage("cp", "media", "mem:backup")
    assert summary(out) == "Copied 0 files (0 B) from media to mem:backup; 3 already identical."


def test_cp_between_local_directories_verifies_by_rereading(
    configure: Any, tree: Path, tmp_path: Path
) -> None:
    configure(media=local(tree), copy=local(tmp_path / "copy"))
    out, _ = stowage("cp", "media:sub", "copy")
    assert "verified 2 by sha256" in out
    assert (tmp_path / "copy/deep/c.txt").read_bytes() == b"c"
    assert (tmp_path / "copy/b.bin").read_bytes() == b"x" * 2048


def test_cp_replaces_changed_files_under_their_exact_names(
    configure: Any, tree: Path, tmp_path: Path
) -> None:
    target = tmp_path / "plain"
    write_tree(target, {"a.txt": b"HELLO", "sub/b.bin": b"old"})
    os.utime(target / "a.txt", (1, 1))  # older than the source: copied again
    plain = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    configure(media=local(tree), plain={**plain, "OPTIONS": {"location": str(target)}})
    out, _ = stowage("cp", "media", "plain")
    assert summary(out).startswith("Copied 3 files")
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == [
        "a.txt",
        "sub/b.bin",
        "sub/deep/c.txt",
    ]
    assert (target / "a.txt").read_bytes() == b"hello"
    assert (target / "sub/b.bin").read_bytes() == b"x" * 2048


def test_same_size_change_is_found_by_checksum_unless_size_only(configure: Any, tree: Path) -> None:
    configure(media=local(tree), mem=memory())
    stowage("cp", "media", "mem")
    (tree / "a.txt").write_bytes(b"HELLO")
    out, _ = stowage("cp", "media", "mem", "--size-only")
    assert summary(out).startswith("Copied 0 files")
    out, _ = stowage("cp", "media", "mem")
    assert summary(out).startswith("Copied 1 file (5 B)")
    assert storages["mem"].open("a.txt").read() == b"HELLO"


def test_sync_delete_and_dry_run(configure: Any, tree: Path) -> None:
    configure(media=local(tree), mem=memory())
    mem = storages["mem"]
    mem.save("stale.txt", ContentFile(b"old"))
    out, _ = stowage("sync", "media", "mem", "--delete", "--dry-run")
    assert "would delete stale.txt" in out
    assert "would copy sub/b.bin -> sub/b.bin" in out
    assert summary(out).startswith("Would copy 3 files")
    assert mem.listdir("") == ([], ["stale.txt"])
    out, _ = stowage("sync", "media", "mem")
    assert mem.exists("stale.txt")
    out, _ = stowage("sync", "media", "mem", "--delete")
    assert "deleted stale.txt" in out
    assert not mem.exists("stale.txt")
    assert mem.open("a.txt").read() == b"hello"


def test_overlapping_locations_are_refused(configure: Any, tree: Path) -> None:
    configure(media=local(tree))
    _, _, error = failing("cp", "media", "media:backup")
    assert "overlap" in error
    _, _, error = failing("cp", "media:sub", "media:sub/deep")
    assert "overlap" in error


def test_a_file_is_not_a_source_directory(configure: Any, tree: Path) -> None:
    configure(media=local(tree), mem=memory())
    _, _, error = failing("cp", "media:a.txt", "mem")
    assert error == "media:a.txt is a file: cp and sync copy directories; name its directory."


def test_sync_delete_refuses_to_empty_the_destination(configure: Any, tree: Path) -> None:
    configure(media=local(tree), mem=memory())
    storages["mem"].save("keep.txt", ContentFile(b"k"))
    _, _, error = failing("sync", "media:nothing-here", "mem", "--delete")
    assert "media:nothing-here has no files" in error
    assert storages["mem"].exists("keep.txt")


@pytest.mark.parametrize("value", ["0", "x"])
def test_bad_jobs_are_refused(configure: Any, tree: Path, value: str) -> None:
    configure(media=local(tree), mem=memory())
    _, _, error = failing("cp", "media", "mem", "--jobs", value)
    assert "--jobs" in error


def test_failed_verification_is_reported_and_the_bad_copy_removed(
    configure: Any, tmp_path: Path
) -> None:
    configure(src=faulty(), dst=faulty())
    source = storages["src"]
    for name in ("good.txt", "short.txt", "corrupt.txt"):
        source.save(name, ContentFile(b"0123456789"))
    _, err, error = failing("cp", "src", "dst")
    assert "2 of 3 files failed" in error
    assert re.search(r"FAILED short\.txt: TransferError: read 5 bytes of a 10-byte source", err)
    assert "FAILED corrupt.txt: TransferError: the destination's content differs" in err
    assert storages["dst"].listdir("") == ([], ["good.txt"])


def test_quiet_copy_prints_nothing(configure: Any, tree: Path) -> None:
    configure(media=local(tree), mem=memory())
    assert stowage("cp", "media", "mem", "-v", "0") == ("", "")


# -- memory bounds ------------------------------------------------------------------------


def test_a_large_file_is_copied_with_bounded_memory(configure: Any, tmp_path: Path) -> None:
    configure(mem=memory(), disk=local(tmp_path / "disk"))
    data = os.urandom(64 * MiB)
    storages["mem"].save("big.bin", ContentFile(data))
    tracemalloc.start()
    try:
        stowage("cp", "mem", "disk")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB, f"copying 64 MiB peaked at {peak / MiB:.1f} MiB"
    assert hashlib.sha256((tmp_path / "disk/big.bin").read_bytes()).digest() == (
        hashlib.sha256(data).digest()
    )


def test_a_plain_django_source_is_read_in_bounded_chunks(configure: Any, tmp_path: Path) -> None:
    write_tree(tmp_path / "src", {"big.bin": os.urandom(5 * MiB + 3)})
    reads = {"BACKEND": "tests.test_commands.RecordingReads"}
    configure(src={**reads, "OPTIONS": {"location": str(tmp_path / "src")}}, mem=memory())
    RecordingReads.sizes.clear()
    stowage("cp", "src", "mem")
    assert RecordingReads.sizes
    assert all(0 < size <= CHUNK for size in RecordingReads.sizes), RecordingReads.sizes


# -- S3 on moto ---------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha",
        "img/logo.png": os.urandom(3000),
        "img/deep/empty.txt": b"",
        # Above the multipart threshold below: its ETag is not an MD5.
        "video.bin": os.urandom(6 * MiB),
    }
    write_tree(tmp_path / "site", files)
    return files


def test_cp_local_to_s3_verifies_and_resumes(
    configure: Any, tmp_path: Path, site: dict[str, bytes], s3_server: MotoServer, s3_bucket: str
) -> None:
    configure(
        media=local(tmp_path / "site"),
        s3=s3(s3_server, s3_bucket, multipart_threshold=5 * MiB),
    )
    out, err = stowage("cp", "media", "s3", "--jobs", "4")
    assert err == ""
    assert summary(out) == (
        "Copied 4 files (6.0 MiB) from media to s3; 0 already identical; "
        "verified 3 by md5, 1 by sha256."
    )
    assert s3_objects(s3_server, s3_bucket) == site
    out, _ = stowage("cp", "media", "s3")
    assert summary(out) == "Copied 0 files (0 B) from media to s3; 4 already identical."
    assert s3_objects(s3_server, s3_bucket) == site


def test_sync_to_s3_with_delete_and_dry_run(
    configure: Any, tmp_path: Path, site: dict[str, bytes], s3_server: MotoServer, s3_bucket: str
) -> None:
    configure(media=local(tmp_path / "site"), s3=s3(s3_server, s3_bucket))
    client = s3_server.boto3()
    client.put_object(Bucket=s3_bucket, Key="img/stale.png", Body=b"gone soon")
    client.put_object(Bucket=s3_bucket, Key="a.txt", Body=b"ALPHA")
    before = s3_objects(s3_server, s3_bucket)
    out, _ = stowage("sync", "media", "s3", "--delete", "--dry-run")
    assert "would delete img/stale.png" in out
    assert "would copy a.txt -> a.txt" in out
    assert s3_objects(s3_server, s3_bucket) == before
    out, _ = stowage("sync", "media", "s3", "--delete")
    assert "deleted img/stale.png" in out
    assert s3_objects(s3_server, s3_bucket) == site


def test_s3_to_local_under_prefixes(
    configure: Any, tmp_path: Path, s3_server: MotoServer, s3_bucket: str
) -> None:
    client = s3_server.boto3()
    for key in ("media/x/1.txt", "media/x/2.txt", "other/3.txt"):
        client.put_object(Bucket=s3_bucket, Key=key, Body=key.encode())
    configure(s3=s3(s3_server, s3_bucket, location="media"), disk=local(tmp_path / "disk"))
    out, _ = stowage("cp", "s3:x", "disk:restored")
    assert "verified 2 by sha256" in out
    assert (tmp_path / "disk/restored/2.txt").read_bytes() == b"media/x/2.txt"
    assert not (tmp_path / "disk/restored/3.txt").exists()
    out, _ = stowage("cp", "s3:x", "disk:restored")
    assert summary(out).endswith("2 already identical.")


def test_a_failing_file_is_reported_while_the_others_copy(
    configure: Any, s3_server: MotoServer, s3_bucket: str
) -> None:
    configure(src=faulty(), s3=s3(s3_server, s3_bucket))
    source = storages["src"]
    for name in ("one.txt", "broken.txt", "two/three.txt"):
        source.save(name, ContentFile(name.encode()))
    out, err, error = failing("cp", "src", "s3")
    assert "FAILED broken.txt: ServiceUnavailable: reading 'broken.txt'" in err
    assert error.startswith("1 of 3 files failed: broken.txt (ServiceUnavailable: reading")
    assert "1 failed" in summary(out)
    assert s3_objects(s3_server, s3_bucket) == {
        "one.txt": b"one.txt",
        "two/three.txt": b"two/three.txt",
    }


def test_cp_to_a_missing_bucket_says_so(configure: Any, tree: Path, s3_server: MotoServer) -> None:
    configure(media=local(tree), s3=s3(s3_server, "no-such-bucket"))
    _, _, error = failing("cp", "media", "s3")
    assert error.startswith("Could not list s3: ServiceError: ")
    assert "\nDiagnosis: bucket or container missing: create it" in error


# -- check ----------------------------------------------------------------------------------

STEP = re.compile(r"^  (\w+)\s+(OK|FAILED)\s+(\d+\.\d) ms(?:  (.*))?$")


def steps(out: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in out.splitlines():
        match = STEP.fullmatch(line)
        if match:
            found[match[1]] = (match[2], match[4] or "")
    return found


def test_check_passes_on_working_storages(
    configure: Any, tmp_path: Path, s3_server: MotoServer, s3_bucket: str
) -> None:
    configure(media=local(tmp_path / "media"), mem=memory(), s3=s3(s3_server, s3_bucket))
    out, _ = stowage("check")
    for alias in ("media", "mem", "s3"):
        assert f"  {alias}: OK" in out
    s3_part = out[out.index("s3 (stowage.S3Storage)") :]
    found = steps(s3_part)
    assert list(found) == ["configure", "write", "read", "url", "delete", "gone"]
    assert all(status == "OK" for status, _ in found.values())
    assert found["url"][1].endswith(".txt (signed)")
    assert "X-Amz-Signature" not in out
    assert s3_objects(s3_server, s3_bucket) == {}
    assert list((tmp_path / "media").iterdir()) == []


def test_check_diagnoses_broken_storages(
    configure: Any, tmp_path: Path, s3_server: MotoServer, s3_bucket: str
) -> None:
    refused = {**s3_server.options(s3_bucket), "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    configure(
        good=memory(),
        nobucket=s3(s3_server, "no-such-bucket"),
        refused={"BACKEND": "stowage.S3Storage", "OPTIONS": refused},
        readonly={
            "BACKEND": "tests.test_commands.ReadOnlyStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
        misconfigured={"BACKEND": "stowage.MemoryStorage", "OPTIONS": {"colour": "blue"}},
    )
    out, _, error = failing("check")
    assert error == (
        "4 of 5 storages failed the check: nobucket (bucket or container missing), "
        "refused (connection refused), readonly (read-only), misconfigured (configuration)"
    )
    assert "  good: OK" in out
    part = out[out.index("nobucket (") : out.index("refused (")]
    assert steps(part)["write"][0] == "FAILED"
    assert "read" not in steps(part)
    assert "diagnosis: bucket or container missing: create it" in part
    assert "diagnosis: connection refused: nothing listens at the endpoint" in out
    assert "stowage-test-secret" not in out


def test_check_only_the_named_storages(configure: Any, tmp_path: Path) -> None:
    configure(a=memory(), b=local(tmp_path))
    out, _ = stowage("check", "b")
    assert out.startswith("b (stowage.LocalStorage)\n")
    assert "a (" not in out
    _, _, error = failing("check", "zzz")
    assert "zzz" in error


def chained(top: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise top from exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            chained(
                AccessDenied("writing 'x': 403 Forbidden"),
                RuntimeError("<Code>RequestTimeTooSkewed</Code>"),
            ),
            "clock skew",
        ),
        (
            chained(AccessDenied("writing 'x'"), RuntimeError("<Code>InvalidAccessKeyId</Code>")),
            "bad credentials or permission denied",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied"),
            "bad credentials or permission denied",
        ),
        (
            chained(ServiceUnavailable("error sending request"), RuntimeError("dns error")),
            "host not found (DNS)",
        ),
        (ConnectionRefusedError(), "connection refused"),
        (TimeoutError(), "timed out"),
        (ServiceUnavailable("503 Service Unavailable"), "service unavailable"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only"),
        (
            chained(ServiceError("x"), RuntimeError("ContainerNotFound")),
            "bucket or container missing",
        ),
        (ValueError("odd"), "unexpected error"),
    ],
)
def test_diagnoses(error: BaseException, kind: str) -> None:
    assert diagnose(error).kind == kind


# -- progress -------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_falls_back_from_rich_to_tqdm_to_plain_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in ("rich", "tqdm"):
        try:
            __import__(module)
        except ImportError:
            pytest.fail(f"{module} is missing: pip install rich tqdm (the dev extra has them)")
    lines: list[str] = []
    assert type(make_progress(lines.append, lines.append, terminal=None)) is PlainProgress
    assert type(make_progress(lines.append, lines.append, terminal=None, quiet=True)) is Progress
    chosen = make_progress(lines.append, lines.append, terminal=Terminal())
    assert isinstance(chosen, RichProgress)
    chosen.close()
    from stowage.cli import progress

    real = progress._optional
    monkeypatch.setattr(progress, "_optional", lambda m: None if m.startswith("rich") else real(m))
    chosen = make_progress(lines.append, lines.append, terminal=Terminal())
    assert isinstance(chosen, TqdmProgress)
    chosen.close()
    monkeypatch.setattr(progress, "_optional", lambda m: None)
    assert type(make_progress(lines.append, lines.append, terminal=Terminal())) is PlainProgress


@pytest.mark.parametrize("kind", ["rich", "tqdm"])
def test_progress_bars_show_files_and_bytes(kind: str) -> None:
    screen = Terminal()
    module = __import__("rich.progress" if kind == "rich" else "tqdm", fromlist=["_"])
    bar = RichProgress(module, screen) if kind == "rich" else TqdmProgress(module, screen)
    bar.start(3, 3 * MiB)
    bar.add_bytes(2 * MiB)
    bar.file_done()
    bar.file_done()
    bar.note("FAILED x.txt: boom", error=True)
    bar.close()
    text = screen.getvalue()
    assert "2/3 files" in text
    assert "FAILED x.txt: boom" in text
    assert "2.0" in text


def test_plain_progress_line() -> None:
    lines: list[str] = []
    plain = PlainProgress(lines.append, lines.append, interval=3600)
    plain.start(4, 4 * MiB)
    plain.add_bytes(MiB)
    plain.file_done()
    plain.discount(MiB)
    assert lines == []
    plain.close()
    assert re.fullmatch(r"1/3 files, 1\.0 MiB/3\.0 MiB, \S+ \S+/s, ETA \d+:\d\d:\d\d", lines[0])
