"""Plain dataclasses for the runtime's state: sessions, leases, calls, labels, plans, workflows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = Any
HISTORY_KEPT = 1024
"""Resolved pending calls, receipts, commits and idempotent preflights a session keeps."""


@dataclass
class Lease:
    """The one lease of a session: who may write, with which fence token (§2.3)."""

    lease_id: str
    fence_token: int
    holder_id: str | None
    expires_at: str | None

    def to_dict(self) -> dict[str, JSON]:
        """Wire form."""
        return {
            "lease_id": self.lease_id,
            "fence_token": self.fence_token,
            "holder_id": self.holder_id,
            "expires_at": self.expires_at,
        }


@dataclass
class Label:
    """One append-only label; system labels are written by the mock itself (§3.6)."""

    label_id: str
    sequence: int
    key: str
    value: JSON
    metadata: dict[str, JSON]
    system: bool
    created_at: str

    def to_dict(self) -> dict[str, JSON]:
        """Wire form."""
        return {
            "label_id": self.label_id,
            "sequence": self.sequence,
            "key": self.key,
            "value": self.value,
            "metadata": self.metadata,
            "system": self.system,
            "created_at": self.created_at,
        }


@dataclass
class PendingCall:
    """A tool call allowed (or not enforced) by a proposal, waiting for its receipt (§2.4)."""

    pending_call_id: str
    proposal_id: str
    tool_call_id: str
    tool_name: str
    arguments: dict[str, JSON]
    commit_requirement: str
    evidence_class: str
    status: str  # pending | committed | uncommitted
    created_at: str
    receipt_id: str | None = None

    def to_dict(self) -> dict[str, JSON]:
        """Wire form."""
        return {
            "pending_call_id": self.pending_call_id,
            "proposal_id": self.proposal_id,
            "tool_call_id": self.tool_call_id,
            "tool_name": self.tool_name,
            "arguments": self.arguments,
            "commit_requirement": self.commit_requirement,
            "evidence_class": self.evidence_class,
            "status": self.status,
            "created_at": self.created_at,
            "receipt_id": self.receipt_id,
        }


@dataclass
class CommittedCall:
    """What a commit leaves behind for later preconditions, loops and bindings."""

    tool_name: str
    arguments: dict[str, JSON]
    output: JSON


@dataclass
class Receipt:
    """A receipt as first received, kept so a replay returns the first answer (§3.5)."""

    receipt_id: str
    request: dict[str, JSON]
    answer: dict[str, JSON]


@dataclass
class Counters:
    """The session counters of §2.1."""

    steps: int = 0
    tool_calls: int = 0
    calls_per_tool: dict[str, int] = field(default_factory=dict)
    consecutive_blocks: int = 0
    consecutive_errors: int = 0
    cost_usd: float = 0.0

    def to_dict(self) -> dict[str, JSON]:
        """Wire form."""
        return {
            "steps": self.steps,
            "tool_calls": self.tool_calls,
            "calls_per_tool": dict(self.calls_per_tool),
            "consecutive_blocks": self.consecutive_blocks,
            "consecutive_errors": self.consecutive_errors,
            "cost_usd": self.cost_usd,
        }


@dataclass
class ToolFilter:
    """Manual narrowing (§3.7): `allow` None means no allow-list."""

    allow: list[str] | None
    deny: list[str]

    def removes(self, tool: str) -> bool:
        """True when the filter hides this tool."""
        return tool in self.deny or (self.allow is not None and tool not in self.allow)

    def to_dict(self) -> dict[str, JSON]:
        """Wire form."""
        return {"allow": self.allow, "deny": list(self.deny)}


@dataclass
class Killed:
    """Why and by whom a session (or workflow) was killed."""

    at: str
    reason: str | None
    actor: str

    def to_dict(self) -> dict[str, JSON]:
        """Wire form."""
        return {"at": self.at, "reason": self.reason, "actor": self.actor}


@dataclass
class WorkflowMembership:
    """A session's place in a workflow (§2.1 `workflow`)."""

    workflow_id: str
    role: str
    type: str  # root | child
    parent_session_id: str | None
    handoff_id: str | None

    def to_dict(self) -> dict[str, JSON]:
        """Wire form."""
        return {
            "workflow_id": self.workflow_id,
            "role": self.role,
            "type": self.type,
            "parent_session_id": self.parent_session_id,
            "handoff_id": self.handoff_id,
        }


@dataclass
class WorkflowRole:
    """A declared role of a workflow; its `session_contract` is kept as given (§3.12)."""

    name: str
    raw: dict[str, JSON]
    compiled: Any = None  # contracts.CompiledSession of its session_contract, or None

    def to_dict(self) -> dict[str, JSON]:
        """Wire form: `name`, and `session_contract` when the role declared one."""
        wire: dict[str, JSON] = {"name": self.name}
        if "session_contract" in self.raw:
            wire["session_contract"] = self.raw["session_contract"]
        return wire


@dataclass
class Handoff:
    """Work offered by one workflow role to another (§3.13–§3.15)."""

    handoff_id: str
    workflow_id: str
    from_session_id: str
    from_role: str
    to_role: str
    payload: dict[str, JSON]
    resource_claims: list[str]
    created_at: str
    expires_at: str | None
    updated_at: str
    status: str = "offered"  # offered | accepted | completed | reclaimed
    child_session_id: str | None = None
    outcome: str | None = None
    result: JSON = None
    completion: tuple[dict[str, JSON], dict[str, JSON]] | None = None  # (request, answer)

    @property
    def is_open(self) -> bool:
        """Offered or accepted: it still holds its resource claims."""
        return self.status in ("offered", "accepted")

    def to_dict(self) -> dict[str, JSON]:
        """Wire form."""
        return {
            "handoff_id": self.handoff_id,
            "workflow_id": self.workflow_id,
            "from_session_id": self.from_session_id,
            "from_role": self.from_role,
            "to_role": self.to_role,
            "status": self.status,
            "payload": self.payload,
            "resource_claims": list(self.resource_claims),
            "child_session_id": self.child_session_id,
            "outcome": self.outcome,
            "result": self.result,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Workflow:
    """A tree of sessions in declared roles, with handoffs and a shared budget (§3.11)."""

    tenant: str
    workflow_id: str
    name: str
    roles: dict[str, WorkflowRole]
    allowed_handoffs: list[tuple[str, str]]
    max_cost_usd: float | None
    max_sessions: int | None
    root_session_id: str
    created_at: str
    members: list[str] = field(default_factory=list)  # session ids, in joining order
    handoffs: dict[str, Handoff] = field(default_factory=dict)  # in offering order
    status: str = "active"  # active | killed
    killed: Killed | None = None


@dataclass
class Plan:
    """A tenant's governance plan for one agent and environment (§3.17)."""

    tenant: str
    agent: str
    environment: str
    status: str  # approved | draft | invalid
    plan_id: str
    compiled_session: dict[str, JSON] | None = None
    compiled_hash: str | None = None
    compiled: Any = None  # contracts.CompiledSession of an approved plan
    draft_id: str | None = None
    draft_version: int = 1
    approval_id: str | None = None
    created_at: str = ""


@dataclass
class Session:
    """Authoritative state of one session (§2.1). `contract` is a CompiledSession or None."""

    tenant: str
    session_id: str
    agent: str
    environment: str
    mode: str
    enforcement: str
    lease: Lease
    contract: Any  # contracts.CompiledSession | None
    governance_source: str  # request | plan | none
    created_at: str
    updated_at: str
    phase: str = "start"
    attachment: str = "no_plan"  # without a contract: no_plan | artifact_invalid
    status: str = "active"
    authority_state: str = "authoritative"
    bypass_detected: bool = False
    bypass_reports: int = 0
    state_version: int = 0
    counters: Counters = field(default_factory=Counters)
    tool_filter: ToolFilter | None = None
    labels: list[Label] = field(default_factory=list)
    bindings: dict[str, JSON] = field(default_factory=dict)
    workflow: WorkflowMembership | None = None
    killed: Killed | None = None
    metadata: dict[str, JSON] = field(default_factory=dict)
    committed: list[CommittedCall] = field(default_factory=list)  # the newest HISTORY_KEPT
    latest_output: dict[str, JSON] = field(default_factory=dict)  # by tool, for preconditions
    forbidden: set[str] = field(default_factory=set)
    pending: dict[str, PendingCall] = field(default_factory=dict)  # insertion = oldest first
    unresolved: dict[str, None] = field(default_factory=dict)  # pending ids without a receipt
    receipts: dict[str, Receipt] = field(default_factory=dict)  # by pending_call_id
    prepared: dict[str, Any] = field(default_factory=dict)  # cycle.Prepared by id
    preflight_answers: dict[str, tuple[JSON, JSON]] = field(default_factory=dict)
    user_labels: int = 0  # labels added through the API, against max_labels_per_session
    label_bytes: int = 0  # their JSON size, against max_label_bytes_per_session
