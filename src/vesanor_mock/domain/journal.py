"""The journal: a bounded record of the requests a world answered (PROTOCOL.md §6).

One entry per `/api/v1` request, oldest first, at most `limit` entries and at most
`max_bytes` of bodies as they crossed the wire (older ones fall off, so a long run holds
memory flat even when its bodies are large). A request body and a handled answer are kept as
the JSON bytes that crossed the wire (already at hand, invisible to the garbage collector)
and parsed only when the journal is read; nothing from the headers is kept, so an API key
never reaches the journal.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_LIMIT = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""The most body bytes (requests and answers, as sent) the journal keeps."""
OUTCOMES = ("handled", "raw", "dropped", "refused", "aborted")


@dataclass(frozen=True, slots=True)
class Entry:
    """One request: what came in, what went out, and which rules fired."""

    seq: int
    at: str
    request_id: str
    method: str
    path: str
    endpoint: str | None
    session_id: str | None
    status: int | None
    outcome: str
    rules_fired: tuple[str, ...]
    request_body: Any
    response_body: Any
    duration_ms: float
    tools: tuple[str, ...] = ()
    size: int = 0
    decision: str | None = None
    error: str | None = None
    committed: bool = False
    tenant: str | None = None

    def to_dict(self, bodies: bool = True) -> dict[str, Any]:
        """The wire form of §6 (`tools` is internal: verify uses it); without the request
        and response bodies when `bodies` is false (`GET /_mock/journal?bodies=false`)."""
        out = {
            "seq": self.seq,
            "at": self.at,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "session_id": self.session_id,
            "status": self.status,
            "outcome": self.outcome,
            "rules_fired": list(self.rules_fired),
        }
        if bodies:
            out["request_body"] = _decoded(self.request_body)
            out["response_body"] = _decoded(self.response_body)
        out["duration_ms"] = self.duration_ms
        out["committed"] = self.committed
        return out


def _decoded(body: Any) -> Any:
    """A body as JSON: bytes are the encoded JSON that crossed the wire, parsed on demand."""
    return json.loads(body) if isinstance(body, bytes) else body


@dataclass
class Draft:
    """An entry being filled in while its request runs."""

    at: str
    request_id: str
    method: str
    path: str
    endpoint: str | None = None
    session_id: str | None = None
    status: int | None = None
    outcome: str = "refused"
    rules_fired: tuple[str, ...] = ()
    request_body: Any = None
    response_body: Any = None
    tools: tuple[str, ...] = ()
    size: int = 0  # bytes of the request and answer bodies, as they crossed the wire
    decision: str | None = None  # the policy's decision in a handled answer
    error: str | None = None  # the error code of an answer in the envelope
    # for the client checks (never stored in an entry): the parsed request, the runtime's
    # answer (or the envelope), and whether the runtime handled it with a 2xx
    request: Any = None
    answer: Any = None
    committed: bool = False
    tenant: str | None = None  # the tenant of the API key, once authenticated


Listener = Callable[[Entry, Draft], object]
"""Called with each recorded entry and its draft, in `seq` order (under the journal's lock)."""


class Journal:
    """A bounded, thread-safe deque of entries with increasing `seq` numbers."""

    def __init__(self, limit: int = DEFAULT_LIMIT, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.listeners: list[Listener] = []
        if limit < 1:
            raise ValueError("journal_limit must be at least 1")
        self._entries: deque[Entry] = deque()
        self._limit = limit
        self._max_bytes = max_bytes
        self._bytes = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._subscribers: tuple[Callable[[Entry], None], ...] = ()

    def subscribe(self, listener: Callable[[Entry], None]) -> Callable[[], None]:
        """Call `listener(entry)` after each record (outside the lock); answer an unsubscribe.

        With nobody subscribed, recording pays one truthiness check for this.
        """
        with self._lock:
            self._subscribers = (*self._subscribers, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(f for f in self._subscribers if f is not listener)

        return unsubscribe

    @property
    def limit(self) -> int:
        """The most entries kept."""
        return self._limit

    @property
    def size(self) -> int:
        """Body bytes held by the entries kept."""
        return self._bytes

    @property
    def total(self) -> int:
        """How many entries were ever recorded (including those that fell off)."""
        return self._seq

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, draft: Draft, duration_ms: float) -> Entry:
        """Append a finished request; answer its entry."""
        if draft.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {draft.outcome!r}")
        with self._lock:
            self._seq += 1
            entry = Entry(
                seq=self._seq,
                at=draft.at,
                request_id=draft.request_id,
                method=draft.method,
                path=draft.path,
                endpoint=draft.endpoint,
                session_id=draft.session_id,
                status=draft.status,
                outcome=draft.outcome,
                rules_fired=draft.rules_fired,
                request_body=draft.request_body,
                response_body=draft.response_body,
                duration_ms=round(duration_ms, 3),
                tools=draft.tools,
                size=draft.size,
                decision=draft.decision,
                error=draft.error,
                committed=draft.committed,
                tenant=draft.tenant,
            )
            self._entries.append(entry)
            self._bytes += entry.size
            while len(self._entries) > 1 and (
                len(self._entries) > self._limit or self._bytes > self._max_bytes
            ):
                self._bytes -= self._entries.popleft().size
            for listener in self.listeners:
                listener(entry, draft)
            subscribers = self._subscribers
        if subscribers:
            for subscriber in subscribers:
                subscriber(entry)
        return entry

    def entries(
        self,
        *,
        endpoint: str | None = None,
        session_id: str | None = None,
        status: int | None = None,
        since: int | None = None,
        outcome: str | None = None,
        rule: str | None = None,
        tail: int | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """The entries kept, oldest first, filtered (`since`: seq strictly greater; `rule`:
        the rule fired on it); then `limit` keeps the first and `tail` the last so many."""
        with self._lock:
            kept = list(self._entries)
        found = [
            e
            for e in kept
            if (endpoint is None or e.endpoint == endpoint)
            and (session_id is None or e.session_id == session_id)
            and (status is None or e.status == status)
            and (since is None or e.seq > since)
            and (outcome is None or e.outcome == outcome)
            and (rule is None or rule in e.rules_fired)
        ]
        if limit is not None:
            found = found[:limit]
        if tail is not None:
            found = found[-tail:] if tail else []
        return found
