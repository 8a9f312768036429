"""The virtual clock: every timestamp and TTL of the mock comes from here (PROTOCOL.md §1.3)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

DEFAULT_START = "2026-01-01T00:00:00.000Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (`Z` or an offset) into an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and `Z`, e.g. `2026-01-01T00:00:00.000Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class Clock:
    """A clock that stands still (frozen) or runs (real), and can be advanced on demand.

    `now()` is `start + advanced (+ real time elapsed since creation, in real mode)`.
    """

    def __init__(
        self,
        start: str | datetime = DEFAULT_START,
        mode: str = "frozen",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("frozen", "real"):
            raise ValueError(f"clock mode must be 'frozen' or 'real', not {mode!r}")
        self._start = parse_timestamp(start) if isinstance(start, str) else start
        self._mode = mode
        self._monotonic = monotonic
        self._origin = monotonic()
        self._advanced = timedelta(0)
        self._lock = threading.Lock()
        self._frozen_iso: str | None = None  # a frozen clock's text, until it is advanced

    @property
    def mode(self) -> str:
        """`frozen` or `real`."""
        return self._mode

    @property
    def start(self) -> datetime:
        """The moment the clock started at."""
        return self._start

    def now(self) -> datetime:
        """The current virtual time."""
        with self._lock:
            moment = self._start + self._advanced
        if self._mode == "real":
            moment += timedelta(seconds=self._monotonic() - self._origin)
        return moment

    def now_iso(self) -> str:
        """The current virtual time as an RFC 3339 string."""
        if self._mode == "real":
            return format_timestamp(self.now())
        with self._lock:  # a frozen clock formats each moment once
            if self._frozen_iso is None:
                self._frozen_iso = format_timestamp(self._start + self._advanced)
            return self._frozen_iso

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (never back) and answer the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._advanced += timedelta(seconds=seconds)
            self._frozen_iso = None
        return self.now()

    def snapshot(self) -> dict[str, str]:
        """The wire form used by the control API."""
        return {"now": self.now_iso(), "start": format_timestamp(self._start), "mode": self._mode}
