"""The JSONPath subset contracts use: `$`, `$.key`, `$.key.sub`, `$.list[0]` and chains of them.

Grammar: `$` followed by any number of segments, each either `.name` (a member of an
object; a name is one or more characters other than `.`, `[`, `]`, quotes and whitespace)
or `[N]` (item N, counted from 0, of a list). A member step on something that is not an
object, an index step on something that is not a list, an absent member and an index out
of range all mean "not found". A member whose value is `null` is found (its value is None).
Also here, for compiling contracts: `pointer` builds the JSON Pointers that locate errors,
`ErrorLog` gathers them, and the `read_*` helpers read one typed field, logging a problem at
its pointer instead of raising, so that every problem of a document is reported at once.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from ..errors import FieldError

Segment = str | int

_SEGMENT = re.compile(r"\.([^.\[\]'\"\s]+)|\[(\d+)\]")


class PathSyntaxError(ValueError):
    """A path outside the supported JSONPath subset."""


@lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple[Segment, ...]:
    """Split a path into member names (str) and list indexes (int); raise PathSyntaxError."""
    if not path.startswith("$"):
        raise PathSyntaxError(f"path {path!r} must start with '$'")
    segments: list[Segment] = []
    position = 1
    while position < len(path):
        match = _SEGMENT.match(path, position)
        if match is None:
            raise PathSyntaxError(
                f"path {path!r} is outside the supported subset ($, $.key, $.key.sub, "
                f"$.list[0]) at character {position}"
            )
        name, index = match.group(1), match.group(2)
        segments.append(name if name is not None else int(index))
        position = match.end()
    return tuple(segments)


def resolve_segments(segments: tuple[Segment, ...], data: Any) -> tuple[bool, Any]:
    """Follow parsed segments into data: (found, value); value is None when not found."""
    current = data
    for segment in segments:
        if isinstance(segment, int):
            if not isinstance(current, list) or segment >= len(current):
                return False, None
            current = current[segment]
        else:
            if not isinstance(current, dict) or segment not in current:
                return False, None
            current = current[segment]
    return True, current


def resolve_path(path: str, data: Any) -> tuple[bool, Any]:
    """Evaluate a path against data: (found, value); raises PathSyntaxError on a bad path."""
    return resolve_segments(parse_path(path), data)


def describe(value: Any) -> str:
    """A value as compact JSON (non-ASCII kept) for reason details."""
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)


def pointer(*parts: str | int) -> str:
    """A JSON Pointer (RFC 6901) from its reference tokens, escaping `~` and `/`."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class ErrorLog:
    """Collects compile errors so that all of them are raised together."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, path: str, message: str, keyword: str) -> None:
        """Record one error at a JSON Pointer."""
        self.items.append(FieldError(path=path, message=message, keyword=keyword))

    def __len__(self) -> int:
        return len(self.items)


def read_enum(value: Any, allowed: tuple[str, ...], at: str, log: ErrorLog) -> str | None:
    """An optional enumerated string: None when absent (or invalid, after an error)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        log.add(at, f"must be one of {', '.join(allowed)}, not {describe(value)}", "enum")
        return None
    return value


def is_int(value: Any) -> bool:
    """An integer that is not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool)


def read_count(value: Any, at: str, log: ErrorLog, minimum: int = 0) -> int | None:
    """An optional integer >= minimum."""
    number = read_amount(value, at, log, minimum)
    if number is not None and not is_int(value):
        log.add(at, f"must be an integer, not {describe(value)}", "type")
        return None
    return None if number is None else int(value)


def read_amount(value: Any, at: str, log: ErrorLog, minimum: int = 0) -> float | None:
    """An optional number >= minimum."""
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        log.add(at, f"must be a number, not {describe(value)}", "type")
        return None
    if value < minimum:
        log.add(at, f"must be at least {minimum}, not {value}", "minimum")
        return None
    return float(value)


def read_flag(item: dict[str, Any], key: str, at: str, log: ErrorLog) -> bool:
    """An optional boolean field (absent or null is false)."""
    value = item.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        log.add(at, f"{key} must be true or false, not {describe(value)}", "type")
        return False
    return value


def read_names(
    value: Any, at: str, log: ErrorLog, phases: set[str] | None = None
) -> tuple[str, ...]:
    """A list of names (tools, or phases when `phases` is given and checked against)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        log.add(at, "must be a list of names", "type")
        return ()
    kept: list[str] = []
    for index, name in enumerate(value):
        if not isinstance(name, str):
            log.add(f"{at}/{index}", "a name must be a string", "type")
        elif phases is not None and name not in phases:
            log.add(f"{at}/{index}", f"unknown phase {name!r}", "unknown_phase")
        else:
            kept.append(name)
    return tuple(kept)


def read_items(value: Any, at: str, log: ErrorLog, what: str) -> list[tuple[str, Any]]:
    """(pointer, item) for each item of an optional list field (a type error otherwise)."""
    if value is None:
        return []
    if not isinstance(value, list):
        log.add(at, f"{what} must be a list", "type")
        return []
    return [(at + pointer(index), item) for index, item in enumerate(value)]
