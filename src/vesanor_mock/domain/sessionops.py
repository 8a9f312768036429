"""Small operations every endpoint shares: the runtime context, guards, kill, labels, views."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, format_timestamp, later, parse_timestamp, seconds_left
from ..errors import Conflict, LimitExceeded, NotFound
from ..ids import IdFactory
from .models import Killed, Label, Lease, Session


@dataclass
class Options:
    """Runtime options a scenario may set (PROTOCOL.md §5 `options`)."""

    prepared_ttl_s: float = 300.0
    lease_ttl_s: float | None = None
    require_receipts_before_preflight: bool = True
    fail_closed_without_plan: bool = True
    max_delay_ms: int = 600_000
    """The most scripted delay one request may get, summed over every rule (PROTOCOL §8)."""
    max_sessions_per_tenant: int = 10_000
    max_workflows_per_tenant: int = 1_000
    max_labels_per_session: int = 1_000
    max_label_bytes_per_session: int = 8 * 1024 * 1024
    max_pending_calls_per_session: int = 1_000


LIMIT_OPTIONS = (
    "max_sessions_per_tenant",
    "max_workflows_per_tenant",
    "max_labels_per_session",
    "max_label_bytes_per_session",
    "max_pending_calls_per_session",
)
"""The caps on resident state (PROTOCOL §8): scenario `options` keys and `serve --limits`."""


def label_bytes(body: dict[str, Any]) -> int:
    """What a label costs against max_label_bytes_per_session: its key, value and metadata
    as compact UTF-8 JSON."""
    held = [body.get("key"), body.get("value"), body.get("metadata")]
    return len(json.dumps(held, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def over_limit(name: str, maximum: int, have: int, adding: int, what: str) -> None:
    """422 MOCK_LIMIT_EXCEEDED, before anything changes, when `have + adding` passes a cap."""
    if have + adding > maximum:
        raise LimitExceeded(
            name,
            maximum,
            f"{what}: {have} held, {adding} more would pass {name} = {maximum} (a mock limit; "
            "raise it with the scenario option or serve --limits)",
        )


@dataclass
class Context:
    """What every domain operation needs: time, ids and options, all injected."""

    clock: Clock
    ids: IdFactory
    options: Options = field(default_factory=Options)

    def now(self) -> str:
        """The current virtual time as RFC 3339."""
        return self.clock.now_iso()

    def later(self, seconds: float) -> str:
        """The virtual time `seconds` from now, as RFC 3339 (at most the clock's last instant)."""
        return format_timestamp(later(self.clock.now(), seconds))

    def seconds_left(self) -> float:
        """How many seconds the clock can still move before its last instant (§8)."""
        return seconds_left(self.clock.now())

    def has_passed(self, timestamp: str | None) -> bool:
        """True when a timestamp is set and the clock has reached it."""
        return timestamp is not None and self.clock.now() >= parse_timestamp(timestamp)

    def new_lease(self, fence_token: int, holder_id: str | None) -> Lease:
        """A lease with a fresh id and the configured TTL."""
        ttl = self.options.lease_ttl_s
        return Lease(
            lease_id=self.ids.new("lease"),
            fence_token=fence_token,
            holder_id=holder_id,
            expires_at=self.later(ttl) if ttl is not None else None,
        )


def session_not_found(session_id: str) -> NotFound:
    """The 404 for a session that does not exist for this tenant."""
    return NotFound(
        f"no session {session_id!r} exists",
        code="SESSION_NOT_FOUND",
        details={"session_id": session_id},
    )


def ensure_not_killed(session: Session) -> None:
    """409 SESSION_KILLED for a killed session."""
    if session.status == "killed":
        killed = session.killed.to_dict() if session.killed else {}
        raise Conflict(
            f"session {session.session_id!r} was killed",
            code="SESSION_KILLED",
            details={"session_id": session.session_id, "killed": killed},
        )


def ensure_not_compromised(session: Session) -> None:
    """409 SESSION_COMPROMISED after a bypass report."""
    if session.authority_state == "compromised":
        raise Conflict(
            f"session {session.session_id!r} is compromised by a bypass report; start a new one",
            code="SESSION_COMPROMISED",
            details={"session_id": session.session_id},
        )


def ensure_writable(session: Session) -> None:
    """Neither killed nor compromised."""
    ensure_not_killed(session)
    ensure_not_compromised(session)


def ensure_fence(ctx: Context, session: Session, fence_token: int | None) -> None:
    """§2.3: the fence must match, then the lease must not have expired."""
    if fence_token is None:
        return
    lease = session.lease
    if fence_token != lease.fence_token:
        raise Conflict(
            f"fence_token {fence_token} does not match the lease's {lease.fence_token}",
            code="FENCE_MISMATCH",
            details={"current_fence_token": lease.fence_token, "lease_id": lease.lease_id},
        )
    if ctx.has_passed(lease.expires_at):
        raise Conflict(
            f"lease {lease.lease_id} expired at {lease.expires_at}; recover the session",
            code="LEASE_EXPIRED",
            details={"lease_id": lease.lease_id, "expires_at": lease.expires_at},
        )


def ensure_state_version(session: Session, expected: int | None) -> None:
    """409 STALE_STATE_VERSION when the client's version is not the current one."""
    if expected is not None and expected != session.state_version:
        raise stale(session)


def stale(session: Session) -> Conflict:
    """The STALE_STATE_VERSION conflict with the current version in details."""
    return Conflict(
        f"state_version moved on; the current one is {session.state_version}",
        code="STALE_STATE_VERSION",
        details={"current_state_version": session.state_version},
    )


def touch(ctx: Context, session: Session) -> None:
    """Record that the session changed."""
    session.updated_at = ctx.now()


def bump(ctx: Context, session: Session) -> None:
    """One authoritative change: state_version + 1 (§2.2)."""
    session.state_version += 1
    touch(ctx, session)


def kill(ctx: Context, session: Session, reason: str | None, actor: str) -> None:
    """Kill a session once: a second kill, by anyone, changes nothing (§3.9)."""
    if session.status == "killed":
        return
    session.status = "killed"
    session.authority_state = "killed"
    session.killed = Killed(at=ctx.now(), reason=reason, actor=actor)
    bump(ctx, session)


def trip_breaker(ctx: Context, session: Session, count: int, limit: int | None, what: str) -> None:
    """§4.4: a consecutive counter reaching its circuit-breaker limit kills the session."""
    if limit is not None and count >= limit:
        kill(ctx, session, f"{count} consecutive {what}", "circuit_breaker")


def add_label(
    ctx: Context,
    session: Session,
    key: str,
    value: Any = None,
    metadata: dict[str, Any] | None = None,
    *,
    system: bool = False,
) -> Label:
    """Append a label (user or system); labels never change state_version."""
    label = Label(
        label_id=ctx.ids.new("lbl"),
        sequence=len(session.labels) + 1,
        key=key,
        value=value,
        metadata=metadata or {},
        system=system,
        created_at=ctx.now(),
    )
    session.labels.append(label)
    touch(ctx, session)
    return label
