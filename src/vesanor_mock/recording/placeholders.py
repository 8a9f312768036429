"""Placeholders: how server-made values and secrets leave a recording, and come back.

Recording (`Scrubber`): an id the server handed out (a string at an `…_id` key, or in an
`X-Request-Id` header, shaped like `sess_…`, `prep_…`, `req_…` and the other prefixes of
PROTOCOL §1.3) becomes `{{sess_1}}`, numbered per prefix in order of first appearance; so
do fence tokens (`{{fence_1}}`, by distinct value) and RFC 3339 timestamps (`{{time_1}}`).
Every later occurrence of the same value, in a path, a body or inside a message, is
replaced by the same placeholder. An id a client sent before any answer named it (a
client-chosen `session_id`) is the client's and stays as it is. Secrets never stay:
`Authorization` becomes `{{key_1}}` (by distinct key), that key is replaced wherever else
it appears, `vsk_…` strings and fields named like secrets (`api_key`, `token`, …) are
masked, and so is every value at an extra JSON Pointer given by the user (`*` matches any
key or index). Recording the same run twice gives the same placeholders, byte for byte.

Replaying and drift (`Binder`, `compare`): a recorded value is compared with the value a
run produced; a placeholder matches any value of its kind and binds to the first one it
meets (ids and fence tokens must then stay the same; timestamps and request ids never
bind), and `render` turns placeholders back into the bound values. Plain Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

ID_PREFIXES = ("sess", "lease", "prep", "prop", "pc", "rcpt", "lbl", "hof", "wf", "plan", "appr")
REQUEST_PREFIX = "req"
_PREFIX = "|".join((*ID_PREFIXES, REQUEST_PREFIX))
ID_VALUE = re.compile(rf"(?:{_PREFIX})_[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
ID_TOKEN = re.compile(rf"(?<![A-Za-z0-9_])(?:{_PREFIX})_[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")
PLACEHOLDER = re.compile(r"\{\{([a-z]+)_([1-9][0-9]*)\}\}")
ANY_PLACEHOLDER = re.compile(r"\{\{(?:[a-z]+_[1-9][0-9]*|masked)\}\}")
MASKED = "{{masked}}"
KEY_KIND, FENCE_KIND, TIME_KIND = "key", "fence", "time"
FREE_KINDS = frozenset({TIME_KIND, REQUEST_PREFIX, KEY_KIND})
"""Kinds that match any value of their kind and never bind: volatile, or secret."""
KINDS = frozenset({*ID_PREFIXES, REQUEST_PREFIX, KEY_KIND, FENCE_KIND, TIME_KIND})
FENCE_KEYS = frozenset({"fence_token", "current_fence_token"})
SECRET_NAME = re.compile(
    r"(?:api[_-]?key|apikey|x-api-key|access[_-]?token|refresh[_-]?token|client[_-]?secret"
    r"|secret|password|authorization|token)",
    re.IGNORECASE,
)
KEY_TOKEN = re.compile(r"(?<![A-Za-z0-9_])vsk_[A-Za-z0-9_-]+")
KEPT_HEADERS = ("content-type", "www-authenticate", "allow", "retry-after", "x-request-id")
"""The answer headers a recording keeps (everything else, Set-Cookie included, is dropped)."""


def is_id_key(key: str) -> bool:
    """Keys whose string values are ids: `id`, `…_id`."""
    return key == "id" or key.endswith("_id")


def parse_mask(text: str) -> tuple[str, ...]:
    """A JSON Pointer to mask (`*` matches any key or index); ValueError if it is not one."""
    if not text.startswith("/"):
        raise ValueError(f"a mask is a JSON Pointer starting with '/', got {text!r}")
    parts = text[1:].split("/")
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in parts)


def _masked_here(masks: Sequence[tuple[str, ...]], parts: tuple[str, ...]) -> bool:
    return any(
        len(mask) == len(parts) and all(m in ("*", p) for m, p in zip(mask, parts, strict=True))
        for mask in masks
    )


@dataclass
class Scrubber:
    """Turns live exchanges into their recorded form; one per recording, fed in order."""

    masks: Sequence[tuple[str, ...]] = ()
    values: dict[str, str] = field(default_factory=dict)  # server-made string -> placeholder
    fences: dict[int, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # secret -> placeholder
    client: set[str] = field(default_factory=set)  # id-shaped strings the client made
    counts: dict[str, int] = field(default_factory=dict)

    def _new(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{{{{{kind}_{self.counts[kind]}}}}}"

    def key(self, secret: str) -> str:
        """The placeholder of a secret (an API key), made on first sight."""
        found = self.keys.get(secret)
        if found is None:
            found = self.keys[secret] = self._new(KEY_KIND)
        return found

    def authorization(self, header: str | None) -> str | None:
        """`Authorization: Bearer <key>` as `{{key_N}}` (any other value counts as a key too)."""
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        secret = token.strip() if scheme.lower() == "bearer" and token.strip() else header
        return self.key(secret)

    # -- requests: learn what the client made, replace what the server made ----------------

    def request_text(self, text: str) -> str:
        """A path or a query value: secrets out, known server values replaced."""
        for token in ID_TOKEN.findall(text):
            if token not in self.values:
                self.client.add(token)
        return self.text(text)

    def query(self, pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Query parameters; those named like secrets are masked."""
        out: dict[str, str] = {}
        for name, value in pairs:
            if SECRET_NAME.fullmatch(name):
                out[name] = self.keys.get(value) or self.key(value)
            else:
                out[name] = self.request_text(value)
        return out

    def request_body(self, body: Any) -> Any:
        """A parsed request body in its recorded form."""
        for _, value in _strings(body):
            for token in ID_TOKEN.findall(value):
                if token not in self.values:
                    self.client.add(token)
        return self._replace(body, ())

    # -- answers: discover server-made values, then replace them everywhere -----------------

    def response_id(self, value: str) -> str:
        """A header value that is a server-made id (`X-Request-Id`)."""
        self._discover_id(value)
        return self.text(value)

    def response_body(self, body: Any) -> Any:
        """A parsed answer body in its recorded form."""
        self._discover(body, None)
        return self._replace(body, ())

    def _discover_id(self, value: str) -> None:
        if ID_VALUE.fullmatch(value) and value not in self.values and value not in self.client:
            self.values[value] = self._new(value.split("_", 1)[0])

    def _discover(self, node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                self._discover(value, name)
        elif isinstance(node, list):
            for item in node:
                self._discover(item, key[:-1] if key and key.endswith("_ids") else key)
        elif isinstance(node, str):
            if key is not None and is_id_key(key):
                self._discover_id(node)
            elif TIMESTAMP.fullmatch(node) and node not in self.values:
                self.values[node] = self._new(TIME_KIND)
        elif _is_fence(key, node) and node not in self.fences:
            self.fences[node] = self._new(FENCE_KIND)

    def _replace(self, node: Any, parts: tuple[str, ...]) -> Any:
        if parts and _masked_here(self.masks, parts):
            return MASKED
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for name, value in node.items():
                if SECRET_NAME.fullmatch(name) and isinstance(value, str):
                    out[name] = self.keys.get(value) or self.key(value)
                else:
                    out[name] = self._replace(value, (*parts, name))
            return out
        if isinstance(node, list):
            return [self._replace(item, (*parts, str(i))) for i, item in enumerate(node)]
        if isinstance(node, str):
            return self.text(node)
        last = parts[-1] if parts else None
        if last in FENCE_KEYS and isinstance(node, int) and not isinstance(node, bool):
            return self.fences.get(node, node)
        return node

    def text(self, text: str) -> str:
        """Secrets masked, server-made values replaced, in any string."""
        whole = self.values.get(text)
        if whole is not None:
            return whole
        for secret, placeholder in self.keys.items():
            if secret in text:
                text = text.replace(secret, placeholder)
        text = KEY_TOKEN.sub(lambda m: self.key(m.group(0)), text)
        return ID_TOKEN.sub(lambda m: self.values.get(m.group(0), m.group(0)), text)


def _is_fence(key: str | None, value: Any) -> bool:
    return key in FENCE_KEYS and isinstance(value, int) and not isinstance(value, bool)


def _strings(node: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _strings(value, name)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        yield key, node


# -- replay and drift: bind placeholders to the values of this run ---------------------------


def kind_of(placeholder: str) -> str | None:
    """`sess` for `{{sess_3}}`; None for text that is not one placeholder."""
    match = PLACEHOLDER.fullmatch(placeholder)
    return match.group(1) if match and match.group(1) in KINDS else None


def placeholders_in(node: Any) -> Iterator[str]:
    """Every placeholder in a value, in document order (dict keys are never placeholders)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from placeholders_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from placeholders_in(item)
    elif isinstance(node, str):
        for match in PLACEHOLDER.finditer(node):
            if match.group(1) in KINDS:
                yield match.group(0)


def _fits(kind: str, value: Any) -> bool:
    """Whether a value of this run can stand where a placeholder of `kind` was recorded."""
    if kind == FENCE_KIND:
        return isinstance(value, int) and not isinstance(value, bool)
    if not isinstance(value, str):
        return False
    if kind == TIME_KIND:
        return TIMESTAMP.fullmatch(value) is not None
    if kind == KEY_KIND:
        return bool(value)
    return value.startswith(kind + "_") and ID_VALUE.fullmatch(value) is not None


def _pattern(kind: str) -> str:
    if kind == FENCE_KIND:
        return r"[0-9]+"
    if kind == TIME_KIND:
        return TIMESTAMP.pattern
    if kind == KEY_KIND:
        return r".+?"
    return re.escape(kind) + r"_[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"


class Unbound(Exception):
    """A recorded request names a value this run never handed out."""

    def __init__(self, placeholder: str) -> None:
        super().__init__(placeholder)
        self.placeholder = placeholder


class Binder:
    """Placeholder <-> value of this run. `make(kind, placeholder)` hands out a new value
    when rendering meets an unbound placeholder (replay); without it rendering raises
    Unbound (drift sends only what the mock handed out)."""

    def __init__(self, make: Callable[[str, str], Any] | None = None) -> None:
        self.make = make
        self.forward: dict[str, Any] = {}
        self.backward: dict[tuple[type, Any], str] = {}

    def bound(self, placeholder: str) -> Any:
        """The value bound to a placeholder; KeyError if none."""
        return self.forward[placeholder]

    def owner(self, value: Any) -> str | None:
        """The placeholder a value of this run is bound to, if any."""
        return self.backward.get((type(value), value))

    def bind(self, placeholder: str, value: Any) -> None:
        """Bind (ids and fence tokens; volatile kinds are never bound)."""
        self.forward[placeholder] = value
        self.backward[(type(value), value)] = placeholder

    def render(self, node: Any, request_id: str | None = None) -> Any:
        """A recorded value with every placeholder replaced by its value in this run."""
        if isinstance(node, dict):
            return {name: self.render(value, request_id) for name, value in node.items()}
        if isinstance(node, list):
            return [self.render(item, request_id) for item in node]
        if not isinstance(node, str) or "{{" not in node:
            return node
        if kind_of(node) is not None:
            return self._value(node, request_id)
        return PLACEHOLDER.sub(lambda m: self._text(m.group(0), request_id), node)

    def _text(self, placeholder: str, request_id: str | None) -> str:
        if kind_of(placeholder) is None:
            return placeholder
        return str(self._value(placeholder, request_id))

    def _value(self, placeholder: str, request_id: str | None) -> Any:
        kind = kind_of(placeholder)
        if kind == REQUEST_PREFIX and request_id is not None:
            return request_id
        if placeholder in self.forward:
            return self.forward[placeholder]
        if self.make is None:
            raise Unbound(placeholder)
        if kind == KEY_KIND:  # a secret is never replayed: it stays a placeholder
            return placeholder
        value = self.make(str(kind), placeholder)
        self.bind(placeholder, value)
        return value

    def lane_text(self, text: str) -> str:
        """A path of this run with the ids bound to placeholders written as placeholders."""
        return ID_TOKEN.sub(lambda m: self.owner(m.group(0)) or m.group(0), text)


@dataclass(frozen=True)
class Difference:
    """One place where a recorded value and this run's differ; a side may be absent."""

    path: str
    expected: Any = None
    received: Any = None
    has_expected: bool = True
    has_received: bool = True

    def to_dict(self) -> dict[str, Any]:
        """`{"path", "expected", "received"}`, a missing side left out."""
        out: dict[str, Any] = {"path": self.path}
        if self.has_expected:
            out["expected"] = self.expected
        if self.has_received:
            out["received"] = self.received
        return out


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@dataclass
class Comparison:
    """One comparison of a recorded value with this run's: its differences and the new
    bindings it would make (applied with `commit`, so a failed match binds nothing)."""

    binder: Binder
    ignore: frozenset[str] = frozenset()
    differences: list[Difference] = field(default_factory=list)
    pending: dict[str, Any] = field(default_factory=dict)

    def commit(self) -> None:
        """Keep the bindings this comparison found."""
        for placeholder, value in self.pending.items():
            self.binder.bind(placeholder, value)

    def shown(self, node: Any) -> Any:
        """A recorded value as the client would see it: bound placeholders rendered."""
        if isinstance(node, dict):
            return {name: self.shown(value) for name, value in node.items()}
        if isinstance(node, list):
            return [self.shown(item) for item in node]
        if isinstance(node, str) and "{{" in node:
            whole = self._lookup(node)
            if whole is not _NONE:
                return whole
            return PLACEHOLDER.sub(lambda m: self._lookup_text(m.group(0)), node)
        return node

    def _lookup(self, placeholder: str) -> Any:
        if placeholder in self.pending:
            return self.pending[placeholder]
        return self.binder.forward.get(placeholder, _NONE)

    def _lookup_text(self, placeholder: str) -> str:
        found = self._lookup(placeholder)
        return placeholder if found is _NONE else str(found)

    def differ(self, path: str, expected: Any = None, received: Any = None, **sides: bool) -> None:
        """Note a difference (recorded values shown with bound placeholders rendered)."""
        shown = self.shown(expected) if sides.get("has_expected", True) else None
        self.differences.append(Difference(path, shown, received, **sides))

    def compare(self, expected: Any, received: Any, path: str = "") -> None:
        """Walk both values in the recorded value's order; note every difference."""
        if path in self.ignore:
            return
        if isinstance(expected, str) and "{{" in expected:
            self._placeholder(expected, received, path)
        elif isinstance(expected, dict) and isinstance(received, dict):
            for name, value in expected.items():
                at = f"{path}/{_escape(name)}"
                if name in received:
                    self.compare(value, received[name], at)
                elif at not in self.ignore:
                    self.differ(at, value, has_received=False)
            for name, value in received.items():
                at = f"{path}/{_escape(name)}"
                if name not in expected and at not in self.ignore:
                    self.differ(at, received=value, has_expected=False)
        elif isinstance(expected, list) and isinstance(received, list):
            for i, value in enumerate(expected):
                if i < len(received):
                    self.compare(value, received[i], f"{path}/{i}")
                else:
                    self.differ(f"{path}/{i}", value, has_received=False)
            for i in range(len(expected), len(received)):
                self.differ(f"{path}/{i}", received=received[i], has_expected=False)
        elif not _same(expected, received):
            self.differ(path, expected, received)

    def _placeholder(self, expected: str, received: Any, path: str) -> None:
        if expected == MASKED:
            return
        kind = kind_of(expected)
        if kind is not None:
            if not self._accept(expected, kind, received):
                self.differ(path, expected, received)
            return
        if not isinstance(received, str) or not self._match_text(expected, received):
            self.differ(path, expected, received)

    def _accept(self, placeholder: str, kind: str, value: Any) -> bool:
        if kind in FREE_KINDS:
            return _fits(kind, value)
        bound = self._lookup(placeholder)
        if bound is not _NONE:
            return _same(bound, value)
        if not _fits(kind, value) or self._owned(value):
            return False
        self.pending[placeholder] = value
        return True

    def _owned(self, value: Any) -> bool:
        return self.binder.owner(value) is not None or any(
            _same(v, value) for v in self.pending.values()
        )

    def _match_text(self, expected: str, received: str) -> bool:
        """Text with placeholders inside (`session {{sess_1}} is killed`)."""
        pieces: list[str] = []
        groups: list[tuple[str, str]] = []
        last = 0
        for match in ANY_PLACEHOLDER.finditer(expected):
            pieces.append(re.escape(expected[last : match.start()]))
            token = match.group(0)
            kind = kind_of(token)
            bound = self._lookup(token) if kind is not None else _NONE
            if kind is None:
                pieces.append(".*?")
            elif bound is not _NONE and kind not in FREE_KINDS:
                pieces.append(re.escape(str(bound)))
            else:
                name = f"g{len(groups)}"
                groups.append((name, token))
                pieces.append(f"(?P<{name}>{_pattern(kind)})")
            last = match.end()
        pieces.append(re.escape(expected[last:]))
        found = re.fullmatch("".join(pieces), received, re.DOTALL)
        if found is None:
            return False
        for name, token in groups:
            kind = kind_of(token)
            assert kind is not None
            value: Any = found.group(name)
            if kind == FENCE_KIND:
                value = int(value)
            if kind not in FREE_KINDS and not self._accept(token, kind, value):
                return False
        return True


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_NONE: Any = _Missing()


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b
