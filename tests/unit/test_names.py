"""The path rules of stowage.names."""

import re

import pytest
from django.core.exceptions import SuspiciousFileOperation

from stowage import names


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a.txt", "a.txt"),
        ("dir/a.txt", "dir/a.txt"),
        ("dir\\sub\\a.txt", "dir/sub/a.txt"),
        ("./dir/./a.txt", "dir/a.txt"),
        ("dir//a.txt", "dir/a.txt"),
        ("dir/", "dir"),
        ("Case/KEPT.TXT", "Case/KEPT.TXT"),
        ("ünï/文件.txt", "ünï/文件.txt"),
        ("...dots.../x", "...dots.../x"),
    ],
)
def test_clean_name_normalises(given: str, expected: str) -> None:
    assert names.clean_name(given) == expected


@pytest.mark.parametrize(
    "name",
    [
        "../a",
        "a/../../b",
        "a/..",
        "/abs",
        "\\abs",
        "..\\a",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\x7fb",
        "a\x85b",
        "",
        ".",
        "./",
    ],
)
def test_clean_name_refuses(name: str) -> None:
    with pytest.raises(SuspiciousFileOperation):
        names.clean_name(name)


def test_clean_name_allows_the_root_only_when_asked() -> None:
    assert names.clean_name("", allow_empty=True) == ""
    assert names.clean_name(None, allow_empty=True) == ""
    with pytest.raises(ValueError, match="must be given"):
        names.clean_name(None)


def test_clean_name_refuses_non_strings() -> None:
    with pytest.raises(TypeError):
        names.clean_name(b"bytes")  # type: ignore[arg-type]


def test_join_key_and_back() -> None:
    location = names.clean_location("/media/")
    assert location == "media"
    key = names.join_key(location, "a/b.txt")
    assert key == "media/a/b.txt"
    assert names.name_from_key(location, key) == "a/b.txt"
    assert names.join_key(location, "", allow_empty=True) == "media"
    assert names.join_key("", "x") == "x"


def test_clean_location_refuses_traversal() -> None:
    with pytest.raises(SuspiciousFileOperation):
        names.clean_location("media/../../etc")


def test_name_from_key_refuses_foreign_keys() -> None:
    with pytest.raises(SuspiciousFileOperation):
        names.name_from_key("media", "mediaeval/x")


@pytest.mark.parametrize(
    ("file_name", "root", "ext"),
    [
        ("a.txt", "a", ".txt"),
        ("x.tar.gz", "x", ".tar.gz"),
        (".env", ".env", ""),
        ("noext", "noext", ""),
    ],
)
def test_split_ext(file_name: str, root: str, ext: str) -> None:
    assert names.split_ext(file_name) == (root, ext)


def test_alternative_names_start_with_the_name() -> None:
    candidates = names.alternative_names("d/photo.jpg")
    assert next(candidates) == "d/photo.jpg"
    for _ in range(20):
        assert re.fullmatch(r"d/photo_[A-Za-z0-9]{7}\.jpg", next(candidates))


def test_alternative_names_fit_max_length() -> None:
    candidates = names.alternative_names("d/" + "a" * 50 + ".txt", max_length=20)
    first = next(candidates)
    assert len(first) <= 20
    assert re.fullmatch(r"d/a+_[A-Za-z0-9]{7}\.txt", first)


def test_alternative_names_give_up_when_no_root_is_left() -> None:
    with pytest.raises(SuspiciousFileOperation, match="can not find an available filename"):
        next(names.alternative_names("directory/name.txt", max_length=12))


def test_overwrite_name_truncates() -> None:
    assert names.overwrite_name("d/abcdef.txt", max_length=9) == "d/abc.txt"
    assert names.overwrite_name("d/abcdef.txt") == "d/abcdef.txt"
    with pytest.raises(SuspiciousFileOperation):
        names.overwrite_name("d/abcdef.txt", max_length=5)
