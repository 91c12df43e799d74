"""Describe the CORS rules direct uploads need, in one form for every service.

Each cloud session turns a :class:`CorsRule` into its service's own
document (S3's ``CORSRules``, GCS's ``cors`` metadata, Azure's ``Cors``
service property) and back, so printing, applying and checking the rules
is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = ["CorsRule", "check_origins", "gaps"]


@record
class CorsRule:
    """One CORS rule: who may send which requests, with which headers, seeing which."""

    origins: tuple[str, ...]
    methods: tuple[str, ...] = ("PUT",)
    allowed_headers: tuple[str, ...] = ()
    exposed_headers: tuple[str, ...] = ()
    max_age: int = 3600


def check_origins(origins: Iterable[str]) -> tuple[str, ...]:
    """Return ``origins`` without trailing slashes, or raise if any is not an origin."""
    found = tuple(o.rstrip("/") for o in origins)
    if not found:
        raise ConfigurationError(
            "Name the site's origins: --origin https://example.com, or "
            "STOWAGE_DIRECT_UPLOADS['CORS_ORIGINS']."
        )
    bad = [o for o in found if "://" not in o or o.count("/") > 2]
    if bad:
        raise ConfigurationError(f"Origins are scheme://host[:port] only, not {bad}.")
    return found


def _matches(value: str, patterns: Iterable[str]) -> bool:
    # Services compare origins, methods and header names without case and
    # take "*" wildcards ("https://*.example.com", "x-ms-meta-*").
    return any(fnmatchcase(value.lower(), pattern.lower()) for pattern in patterns)


def _admits(rule: CorsRule, origin: str, needed: CorsRule) -> bool:
    return (
        _matches(origin, rule.origins)
        and all(_matches(method, rule.methods) for method in needed.methods)
        and all(_matches(header, rule.allowed_headers) for header in needed.allowed_headers)
        and all(_matches(header, rule.exposed_headers) for header in needed.exposed_headers)
    )


def gaps(needed: CorsRule, rules: Sequence[CorsRule]) -> list[str]:
    """Return one line per origin of ``needed`` that no rule of ``rules`` admits as it needs."""
    missing = []
    for origin in needed.origins:
        if not any(_admits(rule, origin, needed) for rule in rules):
            what = f"{origin}: no rule allows {'/'.join(needed.methods)}"
            if needed.allowed_headers:
                what += f" with headers {', '.join(needed.allowed_headers)}"
            if needed.exposed_headers:
                what += f" exposing {', '.join(needed.exposed_headers)}"
            missing.append(what)
    return missing
