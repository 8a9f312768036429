"""The upstream URL of record mode, checked (stdlib only: config.py imports it early)."""

from __future__ import annotations

from urllib.parse import urlsplit


def parse_upstream(text: str) -> str:
    """An upstream base URL: http(s), a host, no query, fragment or credentials."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {text!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"the upstream URL takes no query, fragment or credentials: {text!r}")
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise ValueError(f"bad port in the upstream URL {text!r}: {exc}") from None
    return text.strip().rstrip("/")
