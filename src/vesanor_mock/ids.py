"""Seeded, deterministic id factory (PROTOCOL.md §1.3)."""

from __future__ import annotations

import random
import threading

PREFIXES = ("sess", "lease", "prep", "prop", "pc", "rcpt", "lbl", "hof", "wf", "plan", "appr")


class IdFactory:
    """Hands out prefixed ids; the same seed and call order give the same ids.

    Resource ids are `<prefix>_` + 16 hex digits drawn from one seeded generator; request ids
    are `req_` + a zero-padded counter, so they read in order in logs and journals.
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._requests = 0
        self._lock = threading.Lock()

    @property
    def seed(self) -> int:
        """The seed this factory was made with."""
        return self._seed

    def new(self, prefix: str) -> str:
        """A fresh id with the given prefix (64 random bits: collisions are negligible)."""
        with self._lock:
            return f"{prefix}_{self._rng.getrandbits(64):016x}"

    def request_id(self) -> str:
        """The next request id, `req_000001`, `req_000002`, ..."""
        with self._lock:
            self._requests += 1
            return f"req_{self._requests:06d}"
