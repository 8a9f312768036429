"""The virtual clock: every timestamp and TTL of the mock comes from here (PROTOCOL.md §1.3)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

DEFAULT_START = "2026-01-01T00:00:00.000Z"
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
"""The clock's range (PROTOCOL.md §8): no instant the mock shows is outside it."""
RANGE_TEXT = "1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z"
MAX_EPOCH_S = int(MAX_INSTANT.timestamp())
"""MAX_INSTANT in seconds since 1970 (the `max` of a `clock` MOCK_LIMIT_EXCEEDED)."""


class ClockRangeError(ValueError):
    """An instant, or a move of the clock, outside MIN_INSTANT..MAX_INSTANT."""


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (`Z` or an offset) into an aware UTC datetime.

    ValueError for text that is not a timestamp; ClockRangeError for one outside the
    clock's range (including `0001-01-01T00:00:00+01:00`, which has no UTC form).
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        moment = parsed.astimezone(UTC)
    except OverflowError:
        raise ClockRangeError(f"{text} is outside the clock's range, {RANGE_TEXT}") from None
    if not MIN_INSTANT <= moment <= MAX_INSTANT:
        raise ClockRangeError(f"{text} is outside the clock's range, {RANGE_TEXT}")
    return moment


def seconds_left(moment: datetime) -> float:
    """Seconds from `moment` to the last instant the clock can show."""
    return (MAX_INSTANT - moment).total_seconds()


def later(moment: datetime, seconds: float) -> datetime:
    """`moment + seconds`, held at MAX_INSTANT (a deadline past the end of time never comes)."""
    if seconds >= seconds_left(moment):
        return MAX_INSTANT
    return moment + timedelta(seconds=seconds)


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
            return self._now_locked()

    def now_iso(self) -> str:
        """The current virtual time as an RFC 3339 string."""
        if self._mode == "real":
            return format_timestamp(self.now())
        with self._lock:  # a frozen clock formats each moment once
            if self._frozen_iso is None:
                self._frozen_iso = format_timestamp(self._start + self._advanced)
            return self._frozen_iso

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (never back) and answer the new time.

        ClockRangeError, and no move at all, when it would pass MAX_INSTANT.
        """
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            left = seconds_left(self._now_locked())
            if seconds > left:
                raise ClockRangeError(
                    f"advancing the clock {seconds:g} s would take it past "
                    f"9999-12-31T23:59:59.999Z ({left:.3f} s are left)"
                )
            self._advanced += timedelta(seconds=seconds)
            self._frozen_iso = None
        return self.now()

    def _now_locked(self) -> datetime:
        moment = self._start + self._advanced
        if self._mode == "real":
            elapsed = self._monotonic() - self._origin
            moment = later(moment, elapsed)
        return moment

    def snapshot(self) -> dict[str, str]:
        """The wire form used by the control API."""
        return {"now": self.now_iso(), "start": format_timestamp(self._start), "mode": self._mode}
