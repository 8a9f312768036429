"""The `regex` operator's engine: RE2, so matching takes time linear in the input.

Python's `re` backtracks: `^(a+)+$` against `"a" * 28 + "!"` takes seconds, and every
other request waits (PROTOCOL.md §8). RE2 (the `google-re2` package) never backtracks.
It reads Python's syntax except what needs backtracking; such a pattern, one longer than
MAX_PATTERN_CHARS, or one whose compiled program would need more than MAX_PROGRAM_BYTES,
is refused at compile time with a message saying why (a `COMPILE_ERROR`, never a crash).
Matching is a search anywhere in the string, as `re.search`.

Refused constructs: backreferences (`\\1`, `(?P=name)`), lookahead and lookbehind
(`(?=`, `(?!`, `(?<=`, `(?<!`), possessive quantifiers and atomic groups (`a++`,
`(?>...)`), conditionals (`(?(1)...)`), `\\Z` (write `\\z` or `$`), the verbose flag
`(?x)`, and repetition counts over 1000. Differences for accepted patterns: `\\d`, `\\w`,
`\\s` and `\\b` are ASCII classes (write `\\p{Nd}`, `\\p{L}` for Unicode ones), and
case-insensitive matching folds single characters only (`ß` is not `ss`).
"""

from __future__ import annotations

from typing import Protocol

import re2

MAX_PATTERN_CHARS = 1000
"""The longest pattern a contract may hold."""
MAX_PROGRAM_BYTES = 8 << 20
"""RE2's memory budget for one compiled pattern (its default); more is 'too large'."""

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern on stderr
_OPTIONS.max_mem = MAX_PROGRAM_BYTES


class Pattern(Protocol):
    """A compiled pattern: `search` anywhere in a string."""

    def search(self, text: str) -> object | None:
        """A match object, or None."""


class RegexRefused(ValueError):
    """A pattern the linear-time engine does not run; the message says why."""


def compile_regex(text: str) -> Pattern:
    """Compile `text` for linear-time search, or raise RegexRefused."""
    if len(text) > MAX_PATTERN_CHARS:
        raise RegexRefused(
            f"the pattern has {len(text)} characters, more than the {MAX_PATTERN_CHARS} allowed"
        )
    try:
        compiled: Pattern = re2.compile(text, _OPTIONS)
    except re2.error as exc:
        raise RegexRefused(_reason(exc)) from None
    return compiled


def _reason(exc: re2.error) -> str:
    """RE2's message as text, with a hint for what it refuses on purpose."""
    raw = exc.args[0] if exc.args else exc
    message = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    hints = {
        "invalid perl operator": "lookaround, atomic groups, conditionals and (?x) are not "
        "supported (they need backtracking)",
        "invalid escape sequence": "backreferences and \\Z are not supported",
        "bad repetition operator": "possessive quantifiers are not supported",
        "invalid repetition size": "a repetition count is at most 1000",
        "pattern too large": "the compiled pattern is too large",
    }
    hint = next((text for key, text in hints.items() if key in message), None)
    suffix = f" ({hint}; see docs/reliability.md)" if hint else ""
    return f"{message}{suffix}"
