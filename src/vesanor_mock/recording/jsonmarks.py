"""Where each value of a JSON text sits: JSON Pointer -> (line, column), both 1-based.

Used to locate a problem found in a parsed document (a schema error, an exchange out of
order) in the file it came from. The text must already be valid JSON. Plain Python.
"""

from __future__ import annotations

import bisect
import json
import re

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_SPACE = re.compile(r"[ \t\n\r]*")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class JsonMarks:
    """The position of every value (and of every object key) of a valid JSON text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.values: dict[str, int] = {}
        self.keys: dict[str, int] = {}
        self._value(_SPACE.match(text, 0).end(), "")  # type: ignore[union-attr]

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of a character offset."""
        line = bisect.bisect_right(self.lines, offset)
        return line, offset - self.lines[line - 1] + 1

    def locate(self, path: str, key: bool = False) -> tuple[int | None, int | None]:
        """The position of the value at `path` (its key with `key`), else of its parent."""
        while True:
            if key and path in self.keys:
                return self.position(self.keys[path])
            if path in self.values:
                return self.position(self.values[path])
            if not path:
                return None, None
            path = path.rsplit("/", 1)[0]

    def _skip(self, at: int) -> int:
        return _SPACE.match(self.text, at).end()  # type: ignore[union-attr]

    def _value(self, at: int, path: str) -> int:
        self.values[path] = at
        char = self.text[at]
        if char == "{":
            return self._object(at + 1, path)
        if char == "[":
            return self._array(at + 1, path)
        if char == '"':
            return int(json.decoder.scanstring(self.text, at + 1)[1])  # type: ignore[attr-defined]
        for word in ("true", "false", "null"):
            if self.text.startswith(word, at):
                return at + len(word)
        found = _NUMBER.match(self.text, at)
        if found is None:
            raise ValueError(f"not JSON at offset {at}")
        return found.end()

    def _object(self, at: int, path: str) -> int:
        at = self._skip(at)
        if self.text[at] == "}":
            return at + 1
        while True:
            key_at = at
            key, at = json.decoder.scanstring(self.text, at + 1)  # type: ignore[attr-defined]
            here = f"{path}/{_escape(key)}"
            self.keys[here] = key_at
            at = self._skip(self._skip(at) + 1)  # past the colon
            at = self._skip(self._value(at, here))
            if self.text[at] == "}":
                return at + 1
            at = self._skip(at + 1)  # past the comma

    def _array(self, at: int, path: str) -> int:
        at = self._skip(at)
        if self.text[at] == "]":
            return at + 1
        index = 0
        while True:
            at = self._skip(self._value(at, f"{path}/{index}"))
            index += 1
            if self.text[at] == "]":
                return at + 1
            at = self._skip(at + 1)
