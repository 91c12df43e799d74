"""Check how a storage gives access to its files: open, look up, list, delete, link.

Mixed into :class:`~stowage.testing.StorageContract`; each test uses its
``storage`` fixture. These are the checklist's sections 10-18: opening and
file modes, ``exists``, ``listdir``, ``delete``, ``size`` and the times,
``url()`` and ``path()``. What a backend cannot do is declared by class
attributes (or read from a stowage driver's capabilities), and the matching
test then checks the backend's documented refusal.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils.encoding import filepath_to_uri

from stowage.testing.contract_helpers import declared, read_back
from stowage.testing.report import CHECKED, REFUSED, record

__all__ = ["FileAccessContract"]

#: Escapes of the characters Django's filepath_to_uri leaves bare (~!*()'), which a
#: URL signer may add: the signed path is still Django's quoting of the name.
_BARE_IN_DJANGO = re.compile(r"%(7E|21|2A|28|29|27)", re.IGNORECASE)


def _as_django_quotes(path: str) -> str:
    return _BARE_IN_DJANGO.sub(lambda match: chr(int(match[1], 16)), path)


def _without_query(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]


class FileAccessContract:
    """Files open, read and write in every mode; lookups, listings, URLs and paths work.

    Mixed into :class:`~stowage.testing.StorageContract`; uses its ``storage``
    fixture.
    """

    #: ``url()`` gives URLs whose path is Django's quoting of the name under a base.
    public_urls: ClassVar[bool | None] = None
    #: ``path()`` returns a local filesystem path (else NotImplementedError).
    local_paths: ClassVar[bool | None] = None
    #: ``get_created_time()`` works (else NotImplementedError).
    created_times: ClassVar[bool | None] = None
    #: ``get_accessed_time()`` works (else NotImplementedError).
    accessed_times: ClassVar[bool | None] = None

    # -- 10-11: open, modes ----------------------------------------------------------------

    def test_open_missing_raises_file_not_found(self, storage: Any) -> None:
        """10. Opening a missing name raises FileNotFoundError (at the latest on read)."""
        with pytest.raises(FileNotFoundError):
            storage.open("missing.txt").read()

    def test_open_text_mode(self, storage: Any) -> None:
        """11. Mode 'r' reads str."""
        storage.save("t.txt", ContentFile(b"line one\nline two\n"))
        with storage.open("t.txt", "r") as handle:
            assert handle.read() == "line one\nline two\n"

    def test_write_binary_mode(self, storage: Any) -> None:
        """11. Mode 'wb' writes bytes that read back."""
        with storage.open("written.bin", "wb") as handle:
            handle.write(b"written")
        assert read_back(storage, "written.bin") == b"written"

    def test_write_text_mode(self, storage: Any) -> None:
        """11. Mode 'w' writes str as UTF-8."""
        with storage.open("written.txt", "w") as handle:
            handle.write("ünï")
        assert read_back(storage, "written.txt") == "ünï".encode()

    def test_open_for_write_replaces_content(self, storage: Any) -> None:
        """11. Opening a stored name for writing replaces its content."""
        storage.save("replace.txt", ContentFile(b"old old old"))
        with storage.open("replace.txt", "wb") as handle:
            handle.write(b"new")
        assert read_back(storage, "replace.txt") == b"new"

    def test_seek_tell_and_partial_reads(self, storage: Any) -> None:
        """11. Files seek, tell and read parts."""
        data = bytes(range(256)) * 1024
        storage.save("seek.bin", ContentFile(data))
        with storage.open("seek.bin", "rb") as handle:
            assert handle.read(10) == data[:10]
            assert handle.tell() == 10
            handle.seek(100_000)
            assert handle.read(5) == data[100_000:100_005]
            handle.seek(-3, os.SEEK_END)
            assert handle.read() == data[-3:]
            handle.seek(0)
            assert handle.read() == data

    def test_iterating_lines_and_chunks(self, storage: Any) -> None:
        """11. Iteration yields lines; chunks() yields everything."""
        storage.save("lines.txt", ContentFile(b"a\nb\nc"))
        with storage.open("lines.txt", "rb") as handle:
            assert list(handle) == [b"a\n", b"b\n", b"c"]
            assert b"".join(handle.chunks(chunk_size=2)) == b"a\nb\nc"

    # -- 12-16: exists, listdir, delete, size, times -----------------------------------------

    def test_exists_follows_save_and_delete(self, storage: Any) -> None:
        """12. exists is true after save and false after delete."""
        assert not storage.exists("e.txt")
        storage.save("e.txt", ContentFile(b"e"))
        assert storage.exists("e.txt")
        storage.delete("e.txt")
        assert not storage.exists("e.txt")

    def test_exists_is_true_for_a_directory(self, storage: Any) -> None:
        """12. A directory holding files exists."""
        storage.save("parent/child/file.txt", ContentFile(b"x"))
        assert storage.exists("parent")
        assert storage.exists("parent/child")
        assert not storage.exists("parent/other")

    def test_listdir_separates_dirs_and_files(self, storage: Any) -> None:
        """13. listdir returns base names, directories apart from files."""
        for name in ("top.txt", "d/one.txt", "d/two.txt", "d/sub/three.txt", "e/four.txt"):
            storage.save(name, ContentFile(b"x"))
        dirs, files = storage.listdir("")
        assert sorted(dirs) == ["d", "e"]
        assert sorted(files) == ["top.txt"]
        dirs, files = storage.listdir("d")
        assert sorted(dirs) == ["sub"]
        assert sorted(files) == ["one.txt", "two.txt"]
        assert storage.listdir("d/sub") == ([], ["three.txt"])

    def test_listdir_nested_path_with_trailing_slash(self, storage: Any) -> None:
        """13/28. A trailing slash changes nothing; names are relative."""
        storage.save("a/b/c.txt", ContentFile(b"x"))
        assert storage.listdir("a/b/") == ([], ["c.txt"])

    def test_listdir_of_a_missing_directory(self, storage: Any) -> None:
        """13. A missing directory lists nothing or raises FileNotFoundError."""
        try:
            result = storage.listdir("no/such/dir")
        except FileNotFoundError:
            record(self, "listdir of a missing directory", REFUSED, "FileNotFoundError")
        else:
            assert tuple(map(list, result)) == ([], [])
            record(self, "listdir of a missing directory", CHECKED, "empty")

    def test_delete_missing_is_silent(self, storage: Any) -> None:
        """14. Deleting a missing name raises nothing."""
        storage.delete("never-there.txt")
        storage.delete("no/such/dir/file.txt")

    @pytest.mark.parametrize("name", ["", None])
    def test_delete_without_a_name_raises(self, storage: Any, name: Any) -> None:
        """14. delete('') and delete(None) raise ValueError."""
        with pytest.raises(ValueError, match="name must be given"):
            storage.delete(name)

    def test_empty_file(self, storage: Any) -> None:
        """15. An empty file stores, reads back empty and has size 0."""
        name = storage.save("empty.txt", ContentFile(b""))
        assert read_back(storage, name) == b""
        assert storage.size(name) == 0

    def test_size_in_bytes(self, storage: Any) -> None:
        """15. size() counts bytes, not characters."""
        name = storage.save("size.txt", ContentFile("ünï".encode()))
        assert storage.size(name) == 5  # three characters, five bytes

    def test_size_of_missing_raises(self, storage: Any) -> None:
        """15. size() of a missing name raises FileNotFoundError."""
        with pytest.raises(FileNotFoundError):
            storage.size("missing.txt")

    def test_modified_time_is_aware_utc_with_use_tz(self, storage: Any) -> None:
        """16. With USE_TZ the time is aware and close to now."""
        name = storage.save("t.txt", ContentFile(b"t"))
        with override_settings(USE_TZ=True):
            modified = storage.get_modified_time(name)
        assert modified.tzinfo is not None
        assert modified.utcoffset() == dt.timedelta(0)
        now = dt.datetime.now(dt.UTC)
        assert now - dt.timedelta(minutes=5) < modified < now + dt.timedelta(minutes=5)

    def test_modified_time_is_naive_without_use_tz(self, storage: Any) -> None:
        """16. Without USE_TZ the time is naive local time."""
        name = storage.save("t.txt", ContentFile(b"t"))
        with override_settings(USE_TZ=False):
            modified = storage.get_modified_time(name)
        assert modified.tzinfo is None
        now = dt.datetime.now()
        assert now - dt.timedelta(minutes=5) < modified < now + dt.timedelta(minutes=5)

    def test_created_time_or_not_implemented(self, storage: Any) -> None:
        """16. get_created_time works or raises NotImplementedError."""
        name = storage.save("c.txt", ContentFile(b"c"))
        if declared(self, storage, "created_times", "CREATED_TIME"):
            with override_settings(USE_TZ=True):
                assert storage.get_created_time(name).tzinfo is not None
            record(self, "created time", CHECKED)
        else:
            with pytest.raises(NotImplementedError) as refused:
                storage.get_created_time(name)
            record(self, "created time", REFUSED, refused.type.__name__)

    def test_accessed_time_or_not_implemented(self, storage: Any) -> None:
        """16. get_accessed_time works or raises NotImplementedError."""
        name = storage.save("a.txt", ContentFile(b"a"))
        if declared(self, storage, "accessed_times", "ACCESSED_TIME"):
            with override_settings(USE_TZ=True):
                assert storage.get_accessed_time(name).tzinfo is not None
            record(self, "accessed time", CHECKED)
        else:
            with pytest.raises(NotImplementedError) as refused:
                storage.get_accessed_time(name)
            record(self, "accessed time", REFUSED, refused.type.__name__)

    def test_modified_time_of_missing_raises(self, storage: Any) -> None:
        """16. Times of a missing name raise FileNotFoundError."""
        with pytest.raises(FileNotFoundError):
            storage.get_modified_time("missing.txt")

    # -- 17-18: url and path ----------------------------------------------------------------

    def _url_kind(self, storage: Any) -> str:
        return "public" if declared(self, storage, "public_urls", "public_urls") else "signed"

    def test_url_quotes_special_characters(self, storage: Any) -> None:
        """17. URLs percent-encode what must be, keep ~!*()' and use forward slashes."""
        name = "dir/~!*()'@#$%^&+= x.file"
        url = storage.url(name)
        path = urlsplit(url).path
        assert unquote(path).endswith("/" + name)
        assert "#" not in _without_query(url).split("://")[-1]
        backslashed = _without_query(storage.url("a/b\\c.file"))
        if declared(self, storage, "public_urls", "public_urls"):
            assert path.endswith("/dir/~!*()'%40%23%24%25%5E%26%2B%3D%20x.file"), url
            assert url == _without_query(url)
        else:
            # A signer may also escape ~!*()', which Django leaves bare; nothing else differs.
            assert _as_django_quotes(path).endswith("/" + filepath_to_uri(name)), url
            assert urlsplit(url).query, f"a signed URL without a query: {url}"
        assert backslashed.endswith("/a/b/c.file"), backslashed
        record(self, "url() quoting", CHECKED, self._url_kind(storage))

    def test_url_strips_leading_slashes(self, storage: Any) -> None:
        """17. Leading slashes never make a URL leave its base."""
        public = declared(self, storage, "public_urls", "public_urls")
        base = _without_query(storage.url("x.file"))[: -len("x.file")]
        assert base.endswith("/"), base
        for name in ("/evil.com", "\\evil.com", "///evil.com", "\\\\\\evil.com"):
            url = storage.url(name)
            if public:
                assert url == base + "evil.com"
            else:
                assert _without_query(url) == base + "evil.com", url
        record(self, "url() strips leading slashes", CHECKED, self._url_kind(storage))

    def test_url_of_none_is_the_base(self, storage: Any) -> None:
        """17. url(None) returns the base URL (never signed: it names no file)."""
        base = _without_query(storage.url("x.file"))[: -len("x.file")]
        assert storage.url(None) == base
        record(self, "url(None) is the base", CHECKED, self._url_kind(storage))

    def test_path_or_not_implemented(self, storage: Any) -> None:
        """18. path() gives a real file locally and raises NotImplementedError remotely."""
        name = storage.save("p.txt", ContentFile(b"path"))
        if declared(self, storage, "local_paths", "LOCAL_PATH"):
            with open(storage.path(name), "rb") as handle:
                assert handle.read() == b"path"
            record(self, "path()", CHECKED)
        else:
            with pytest.raises(NotImplementedError) as refused:
                storage.path("")
            with pytest.raises(NotImplementedError):
                storage.path(name)
            record(self, "path()", REFUSED, refused.type.__name__)
