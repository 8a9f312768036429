"""Replay (PROTOCOL §9): answer each request with the next recorded answer of its lane.

A lane is a session (every request under `/replay/sessions/{sid}`), a workflow, the
session creations (`create`), or any other path; each is answered in recorded order, so a
repeated identical request gets the next recorded answer, not the first. A request is
compared with the next recorded one of its lane (method, path, query, key, content type,
body): ids this run handed out stand for their placeholders, and a placeholder not yet
handed out matches any value of its kind (then binds to it). Any difference answers
`409 REPLAY_MISMATCH` and consumes nothing; a match consumes the exchange and renders its
answer with the ids of this run (new ones drawn from the replay's own seeded ids, fence
tokens as `{{fence_N}}` -> N, timestamps from the mock's clock, the request id of this
answer). Plain Python: the HTTP side is http/replaying.py.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..clock import format_timestamp, parse_timestamp
from ..errors import ReplayMismatch
from ..ids import IdFactory
from .format import Exchange, Recording, lane_of
from .placeholders import (
    FENCE_KIND,
    PLACEHOLDER,
    TIME_KIND,
    Binder,
    Comparison,
    Difference,
    Scrubber,
    parse_mask,
)


@dataclass(frozen=True)
class Answer:
    """A recorded answer rendered for this run."""

    exchange: Exchange
    status: int
    headers: dict[str, str]
    body: Any  # JSON, or None
    text: str | None  # an answer that was not JSON


class Replay:
    """The state of one replay: lanes, bindings, the keys clients presented."""

    def __init__(self, recording: Recording, now: Callable[[], str], seed: int = 0) -> None:
        self.recording = recording
        self.now = now
        self.ids = IdFactory(seed)
        self.binder = Binder(self._make)
        # Masks what clients send as the recorder did (keys numbered, masks applied), so a
        # request compares with its recorded form and a mismatch never echoes a secret.
        self.keys = Scrubber([parse_mask(mask) for mask in recording.masks])
        self.lanes: dict[str, deque[Exchange]] = {}
        self.answered: dict[str, int] = {}
        for exchange in recording.exchanges:
            self.lanes.setdefault(exchange.lane, deque()).append(exchange)
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        """Recorded exchanges not answered yet."""
        return sum(len(lane) for lane in self.lanes.values())

    def request_form(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        authorization: str | None,
        content_type: str | None,
        body: Any,
        body_text: str | None,
    ) -> dict[str, Any]:
        """An incoming request in the form of a recorded one: keys as `{{key_N}}`, masks."""
        keys = self.keys
        with self._lock:
            form: dict[str, Any] = {"method": method}
            auth = keys.authorization(authorization)
            form["path"] = keys.text(path)
            if query:
                form["query"] = keys.query(query)
            form["auth"] = auth
            if content_type is not None:
                form["content_type"] = content_type
            if body_text is not None:
                form["body_text"] = keys.text(body_text)
            elif body is not None:
                form["body"] = keys.request_body(body)
        return form

    def answer(self, request: dict[str, Any], request_id: str) -> Answer:
        """The next recorded answer of the request's lane; ReplayMismatch if it differs."""
        with self._lock:
            lane = lane_of(self.binder.lane_text(str(request["path"])))
            queue = self.lanes.get(lane)
            if not queue:
                raise self._exhausted(request, lane)
            exchange = queue[0]
            recorded = exchange.request
            comparison = Comparison(self.binder)
            comparison.compare(_without_auth(recorded), _without_auth(request))
            if recorded["auth"] != request["auth"]:
                comparison.differences.append(
                    Difference("/auth", recorded["auth"], request["auth"])
                )
            if comparison.differences:
                raise self._mismatch(request, lane, exchange, comparison)
            comparison.commit()
            queue.popleft()
            self.answered[lane] = self.answered.get(lane, 0) + 1
            return self._render(exchange, request_id)

    def _render(self, exchange: Exchange, request_id: str) -> Answer:
        response = exchange.response
        headers = {
            name: request_id if name == "x-request-id" else str(self.binder.render(value))
            for name, value in response["headers"].items()
        }
        headers["x-request-id"] = request_id
        text = response.get("body_text")
        body = self.binder.render(response["body"], request_id) if "body" in response else None
        if text is not None:
            text = str(self.binder.render(text, request_id))
        return Answer(exchange, int(response["status"]), headers, body, text)

    def _make(self, kind: str, placeholder: str) -> Any:
        """A value of this run for a placeholder met for the first time."""
        if kind == FENCE_KIND:
            found = PLACEHOLDER.fullmatch(placeholder)
            assert found is not None
            return int(found.group(2))
        if kind == TIME_KIND:
            moment = parse_timestamp(self.now())
            value = format_timestamp(moment)
            while self.binder.owner(value) is not None:  # one moment per placeholder
                moment += timedelta(milliseconds=1)
                value = format_timestamp(moment)
            return value
        return self.ids.new(kind)

    def _exhausted(self, request: dict[str, Any], lane: str) -> ReplayMismatch:
        done = self.answered.get(lane, 0)
        shown = lane if lane.startswith(("session ", "workflow ", "create")) else f"path {lane}"
        if lane == "create":
            shown = "session creation"
        message = (
            f"{request['method']} {request['path']}: nothing more was recorded for {shown} "
            f"({done} recorded answer(s) already replayed)"
        )
        difference = Difference("", received=request, has_expected=False)
        details = {"expected": None, "received": request, "differences": [difference.to_dict()]}
        return ReplayMismatch(message, details=details)

    def _mismatch(
        self, request: dict[str, Any], lane: str, exchange: Exchange, comparison: Comparison
    ) -> ReplayMismatch:
        differences = comparison.differences
        first = differences[0].path or "/"
        message = (
            f"{request['method']} {request['path']} is not the next request recorded for "
            f"{lane} (exchange {exchange.seq}): {len(differences)} difference(s), first at "
            f"{first}"
        )
        details = {
            "expected": comparison.shown(exchange.request),
            "received": request,
            "differences": [d.to_dict() for d in differences],
        }
        return ReplayMismatch(message, details=details)


def _without_auth(request: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in request.items() if name != "auth"}
