"""Coverage (PROTOCOL.md §7.2): which situations an SDK's tests made the mock show.

A situation is something an SDK must handle: an endpoint answering 2xx, an endpoint
answering one of its error codes, a policy reason in a block, a scenario effect or fault,
a session state. `situations_of` names the situations one request showed the client (from
its note, and the rules that fired on it); `Coverage` counts them over the server's life,
across resets and scenario loads, until cleared. The catalogue of every situation that can
exist is built outside the domain from the contract (see `catalogue.py`); an observed
situation the catalogue lacks is kept apart as `unlisted`, so a test can catch the drift.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .notes import Note
from .rules import Effects, Rule

REASON_CODES = (
    "tool_filtered",
    "no_contract",
    "wrong_phase",
    "forbidden_in_state",
    "risk_default_block",
    "precondition_not_met",
    "argument_invariant_failed",
    "binding_mismatch",
    "session_limit_exceeded",
    "max_calls_per_tool_exceeded",
    "loop_detected",
    "checkpoint_required",
    "checkpoint_denied",
    "no_approved_plan",
    "approved_artifact_invalid",
    "session_killed",
    "scenario_forced",
)
"""Every policy reason code a block can carry (§4.2, §2.1, §3.4, §5), in §4.2 order."""
KNOWN_REASONS = frozenset(REASON_CODES)
"""A scenario's own block codes are covered as effect:block, not as reasons."""
KILL_ACTORS = ("api", "circuit_breaker", "workflow", "scenario", "handoff_reclaim")
"""Who can kill a session (§2.1); a kill request's own `actor` counts as `api`."""
STATES = ("compromised", "lease_expired", "fence_rotated")
STATUS_CLASSES = ("2xx", "4xx", "5xx")
"""The `respond` fault by status class."""
FAULTS = ("respond", "delay_ms", "drop_connection", "malformed_body", "after_commit")
"""Scenario `then` keys that are transport faults (the others are effects on state)."""


@dataclass(frozen=True)
class Situation:
    """One entry of the catalogue: a stable id, its kind, its endpoint (if any), what it is."""

    id: str
    kind: str
    endpoint: str | None
    detail: str
    rank: int = 0  # lower is more important when listing what is missing


def status_class(status: int) -> str:
    """`2xx`, `3xx`, `4xx` or `5xx`."""
    return f"{status // 100}xx"


def effect_situations(effects: Effects) -> list[str]:
    """The effect and fault situations one fired rule shows."""
    found: list[str] = []
    if effects.block is not None:
        found.append("effect:block")
    if effects.answer == "stale_state_version":
        found.append("effect:stale_state_version")
    if effects.kill:
        found.append("effect:kill_session")
    if effects.compromise:
        found.append("effect:compromise_session")
    if effects.expire_lease:
        found.append("effect:expire_lease")
    if effects.advance_clock_s:
        found.append("effect:advance_clock_s")
    found += _fault_situations(effects.answer, effects.respond, effects.delay_ms)
    late = effects.after_commit
    if late is not None:
        found.append("fault:after_commit")
        found += _fault_situations(late.answer, late.respond, late.delay_ms)
        if late.kill:
            found.append("effect:kill_session")
    return found


def _fault_situations(answer: str | None, respond: object, delay_ms: int) -> list[str]:
    found: list[str] = []
    if answer in ("drop_connection", "malformed_body"):
        found.append(f"fault:{answer}")
    status = getattr(respond, "status", None)
    if answer == "respond" and isinstance(status, int):
        found.append(f"fault:respond:{status_class(status)}")
    if delay_ms:
        found.append("fault:delay_ms")
    return found


def situations_of(note: Note, fired: Sequence[Rule] = ()) -> list[str]:
    """Every situation one request showed the client."""
    found: list[str] = []
    endpoint = note.endpoint
    if endpoint is None:
        return found
    status = note.status
    forced_stale = note.outcome == "raw" and note.error == "STALE_STATE_VERSION"
    if note.outcome in ("handled", "refused") or forced_stale:
        if status is not None and 200 <= status < 300:
            found.append(f"{endpoint}:2xx")
        elif status is not None and note.error is not None:
            found.append(f"{endpoint}:{status}:{note.error}")
    found += [f"reason:{code}" for code in note.reasons if code in KNOWN_REASONS]
    if (
        note.readable
        and note.killed_actor is not None
        and (note.session_status == "killed" or note.error == "SESSION_KILLED")
    ):
        actor = note.killed_actor if note.killed_actor in KILL_ACTORS else "api"
        found.append(f"state:killed:{actor}")
    if note.readable and (
        note.session_status == "compromised" or note.error == "SESSION_COMPROMISED"
    ):
        found.append("state:compromised")
    if note.readable and note.error == "LEASE_EXPIRED":
        found.append("state:lease_expired")
    if note.readable and note.error == "FENCE_MISMATCH":
        found.append("state:fence_rotated")
    for rule in fired:
        found += effect_situations(rule.then)
    return list(dict.fromkeys(found))


class Coverage:
    """Situations seen, counted over the server's life (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()

    def observe(self, note: Note, fired: Sequence[Rule] = ()) -> None:
        """Count the situations one request showed."""
        found = situations_of(note, fired)
        if found:
            with self._lock:
                self._seen.update(found)

    def add(self, seen: Iterable[tuple[str, int]]) -> None:
        """Add counts (merging another run's coverage)."""
        with self._lock:
            for ident, count in seen:
                self._seen[ident] += count

    def clear(self) -> None:
        """Forget everything seen (DELETE /_mock/coverage)."""
        with self._lock:
            self._seen.clear()

    def seen(self) -> dict[str, int]:
        """Each situation id seen, with its count."""
        with self._lock:
            return dict(self._seen)

    def unlisted(self, catalogue: Sequence[Situation]) -> list[str]:
        """Situations seen that the catalogue does not list (a drift between code and contract)."""
        known = {s.id for s in catalogue}
        return sorted(ident for ident in self.seen() if ident not in known)


def report(catalogue: Sequence[Situation], seen: dict[str, int]) -> dict[str, object]:
    """The §7.2 answer: every situation with its count, covered, total and missing ids."""
    situations = []
    for s in catalogue:
        item: dict[str, object] = {"id": s.id, "kind": s.kind}
        if s.endpoint is not None:
            item["endpoint"] = s.endpoint
        item["detail"] = s.detail
        item["seen"] = seen.get(s.id, 0)
        situations.append(item)
    missing = [s for s in catalogue if not seen.get(s.id)]
    missing.sort(key=lambda s: s.rank)  # stable: catalogue order within a rank
    return {
        "situations": situations,
        "covered": len(catalogue) - len(missing),
        "total": len(catalogue),
        "missing": [s.id for s in missing],
    }
