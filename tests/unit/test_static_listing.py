"""A static storage's listing knows its directories as files come and go."""

from __future__ import annotations

from stowage.drivers.base import ObjectInfo
from stowage.static_listing import Listing


def _info(name: str) -> ObjectInfo:
    return ObjectInfo(key=name, size=1)


def test_a_directory_is_held_while_any_file_lies_under_it() -> None:
    listing = Listing()
    listing["app/css/site.css"] = _info("app/css/site.css")
    listing["app/css/site.css"] = _info("app/css/site.css")  # replaced, counted once
    listing["app/logo.png"] = _info("app/logo.png")
    assert listing.holds_directory("app")
    assert listing.holds_directory("app/css")
    assert not listing.holds_directory("app/css/site.css")
    assert not listing.holds_directory("ap")
    assert listing.pop("app/css/site.css") is not None
    assert not listing.holds_directory("app/css")
    assert listing.holds_directory("app")
    del listing["app/logo.png"]
    assert not listing.holds_directory("app")
    assert listing.pop("app/logo.png", "gone") == "gone"
    assert listing == {}
