"""Workflows (PROTOCOL.md §3.11, §3.12): compile one, admit root and child sessions, budget, view.

`check_admission` raises every refusal of a workflow session before anything changes;
`admit` then applies it and cannot fail, so a refused create leaves no half-made workflow,
session or accepted handoff behind. Compile errors point into the compiled_workflow, as a
compiled_session's do into the compiled_session.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..errors import CompileError, Conflict, FieldError, NotFound, Unprocessable, ValidationFailed
from . import contracts
from .models import Handoff, Session, Workflow, WorkflowMembership, WorkflowRole
from .policy import Reason
from .sessionops import Context

Workflows = dict[tuple[str, str], Workflow]
"""Every workflow, keyed by (tenant, workflow_id): each tenant has its own namespace."""


@dataclass(frozen=True)
class WorkflowSpec:
    """A checked compiled_workflow: roles (contracts compiled), allowed handoffs and limits."""

    name: str
    roles: dict[str, WorkflowRole]
    allowed_handoffs: tuple[tuple[str, str], ...]
    max_cost_usd: float | None
    max_sessions: int | None


@dataclass(frozen=True)
class Admission:
    """A workflow session that passed every check; `admit` applies it."""

    type: str  # root | child
    role: WorkflowRole
    workflow_id: str | None  # root: the client's id or None (the server makes one)
    spec: WorkflowSpec | None = None  # root only
    workflow: Workflow | None = None  # child only
    parent_session_id: str | None = None
    handoff: Handoff | None = None


# -- lookups and refusals -----------------------------------------------------------------


def find_workflow(store: Workflows, tenant: str, workflow_id: str) -> Workflow:
    """The tenant's workflow, or 404 exactly as if it never existed."""
    found = store.get((tenant, workflow_id))
    if found is None:
        raise NotFound(
            f"no workflow {workflow_id!r} exists",
            code="WORKFLOW_NOT_FOUND",
            details={"workflow_id": workflow_id},
        )
    return found


def find_handoff(workflow: Workflow, handoff_id: str) -> Handoff:
    """A handoff of this workflow, or 404."""
    found = workflow.handoffs.get(handoff_id)
    if found is None:
        raise NotFound(
            f"no handoff {handoff_id!r} in workflow {workflow.workflow_id!r}",
            code="HANDOFF_NOT_FOUND",
            details={"workflow_id": workflow.workflow_id, "handoff_id": handoff_id},
        )
    return found


def ensure_active(workflow: Workflow) -> None:
    """409 WORKFLOW_KILLED for a killed workflow."""
    if workflow.status == "killed":
        killed = workflow.killed
        raise Conflict(
            f"workflow {workflow.workflow_id!r} was killed",
            code="WORKFLOW_KILLED",
            details={
                "workflow_id": workflow.workflow_id,
                "killed": {"at": killed.at, "reason": killed.reason} if killed else {},
            },
        )


def unknown_role(role: str, roles: dict[str, WorkflowRole]) -> Unprocessable:
    """422 UNKNOWN_ROLE naming the declared roles."""
    return Unprocessable(
        f"role {role!r} is not declared by the workflow",
        code="UNKNOWN_ROLE",
        details={"role": role, "roles": list(roles)},
    )


# -- compiling a compiled_workflow --------------------------------------------------------


def compile_workflow(raw: Any) -> WorkflowSpec:
    """Check a compiled_workflow; raise CompileError listing every problem."""
    if not isinstance(raw, dict):
        raise CompileError([FieldError("", "compiled_workflow must be an object", "type")])
    errors: list[FieldError] = []
    if raw.get("schema_version") != "1.0":
        errors.append(FieldError("/schema_version", 'schema_version must be "1.0"', "const"))
    name = raw.get("workflow")
    if not isinstance(name, str) or not name:
        errors.append(FieldError("/workflow", "workflow must be a non-empty name", "type"))
    roles = _roles(raw.get("roles"), errors)
    allowed = _allowed_handoffs(raw.get("handoffs", []), roles, errors)
    max_cost, max_sessions = _limits(raw.get("limits"), errors)
    if errors:
        raise CompileError(errors)
    return WorkflowSpec(str(name), roles, allowed, max_cost, max_sessions)


def _roles(value: Any, errors: list[FieldError]) -> dict[str, WorkflowRole]:
    """Declared roles by name, each with its compiled session_contract (if any)."""
    if not isinstance(value, list) or not value:
        errors.append(FieldError("/roles", "roles must be a non-empty list", "minItems"))
        return {}
    roles: dict[str, WorkflowRole] = {}
    for index, entry in enumerate(value):
        at = f"/roles/{index}"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            errors.append(FieldError(at + "/name", "a role needs a non-empty name", "required"))
        elif name in roles:
            errors.append(FieldError(at + "/name", f"role {name!r} is declared twice", "unique"))
        else:
            compiled = _role_contract(entry.get("session_contract"), at, errors)
            roles[name] = WorkflowRole(name, copy.deepcopy(entry), compiled)
    return roles


def _role_contract(raw: Any, at: str, errors: list[FieldError]) -> contracts.CompiledSession | None:
    """A role's session_contract compiled; its errors point at it inside the workflow.

    A string is the published `workflow.yaml` form, a path to the role's contracts folder:
    over the API it names a role without an inline contract (kept as given, compiles to
    nothing); the mock resolves such paths only when it reads a contracts folder.
    """
    if raw is None or isinstance(raw, str):
        return None
    try:
        return contracts.compile_session(raw)
    except CompileError as error:
        prefix = at + "/session_contract"
        errors.extend(FieldError(prefix + e.path, e.message, e.keyword) for e in error.errors)
        return None


def _allowed_handoffs(
    value: Any, roles: dict[str, WorkflowRole], errors: list[FieldError]
) -> tuple[tuple[str, str], ...]:
    """The declared `from -> to` pairs; both ends must be declared roles."""
    if not isinstance(value, list):
        errors.append(FieldError("/handoffs", "handoffs must be a list", "type"))
        return ()
    pairs: list[tuple[str, str]] = []
    for index, entry in enumerate(value):
        ends = [entry.get(end) if isinstance(entry, dict) else None for end in ("from", "to")]
        for end, role in zip(("from", "to"), ends, strict=True):
            if not isinstance(role, str) or role not in roles:
                message = f"{end} names {role!r}, which is not a declared role ({list(roles)})"
                errors.append(FieldError(f"/handoffs/{index}/{end}", message, "enum"))
        if all(isinstance(role, str) for role in ends):
            pairs.append((str(ends[0]), str(ends[1])))
    return tuple(pairs)


def _limits(value: Any, errors: list[FieldError]) -> tuple[float | None, int | None]:
    """`max_cost_usd` (a number >= 0) and `max_sessions` (an integer >= 1), both optional."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        errors.append(FieldError("/limits", "limits must be an object", "type"))
        return None, None
    cost, sessions = value.get("max_cost_usd"), value.get("max_sessions")
    if cost is not None and (
        isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0
    ):
        errors.append(FieldError("/limits/max_cost_usd", "expected a number >= 0", "minimum"))
        cost = None
    if sessions is not None and (
        isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 1
    ):
        errors.append(FieldError("/limits/max_sessions", "expected an integer >= 1", "minimum"))
        sessions = None
    return (float(cost) if cost is not None else None), sessions


# -- admitting a session ------------------------------------------------------------------


def check_admission(
    ctx: Context, store: Workflows, tenant: str, field: dict[str, Any] | None
) -> Admission | None:
    """Every check of a create request's `workflow` field (§3.12); changes nothing."""
    if field is None:
        return None
    if field["type"] == "root":
        return _check_root(store, tenant, field)
    return _check_child(ctx, store, tenant, field)


def _refuse_fields(field: dict[str, Any], names: tuple[str, ...], kind: str) -> None:
    """422 VALIDATION_FAILED for fields that mean nothing for this kind of session."""
    given = [name for name in names if name in field]
    if given:
        raise ValidationFailed(
            [
                FieldError(f"/workflow/{name}", f"{kind} does not take {name}", "not")
                for name in given
            ]
        )


def _check_root(store: Workflows, tenant: str, field: dict[str, Any]) -> Admission:
    _refuse_fields(field, ("parent_session_id", "handoff_id"), "a root session")
    workflow_id = field.get("workflow_id")
    if workflow_id is not None and (tenant, workflow_id) in store:
        raise Conflict(
            f"workflow {workflow_id!r} already exists",
            code="WORKFLOW_EXISTS",
            details={"workflow_id": workflow_id},
        )
    spec = compile_workflow(field["compiled_workflow"])
    role = spec.roles.get(field["role"])
    if role is None:
        raise unknown_role(field["role"], spec.roles)
    return Admission("root", role, workflow_id, spec=spec)


def _check_child(ctx: Context, store: Workflows, tenant: str, field: dict[str, Any]) -> Admission:
    _refuse_fields(field, ("compiled_workflow",), "a child session")
    workflow = find_workflow(store, tenant, field["workflow_id"])
    ensure_active(workflow)
    role = workflow.roles.get(field["role"])
    if role is None:
        raise unknown_role(field["role"], workflow.roles)
    parent = field.get("parent_session_id")
    if parent is not None and parent not in workflow.members:
        message = f"session {parent!r} is not a member of workflow {workflow.workflow_id!r}"
        raise ValidationFailed([FieldError("/workflow/parent_session_id", message, "member")])
    handoff = _offered_to(ctx, workflow, field.get("handoff_id"), role.name)
    if workflow.max_sessions is not None and len(workflow.members) >= workflow.max_sessions:
        raise Conflict(
            f"workflow {workflow.workflow_id!r} already has its {workflow.max_sessions} sessions",
            code="RESOURCE_CONFLICT",
            details={"resource": "sessions", "max_sessions": workflow.max_sessions},
        )
    if parent is None:
        parent = handoff.from_session_id if handoff is not None else workflow.root_session_id
    return Admission("child", role, workflow.workflow_id, None, workflow, parent, handoff)


def _offered_to(
    ctx: Context, workflow: Workflow, handoff_id: str | None, role: str
) -> Handoff | None:
    """The handoff a child accepts: it must be offered, to this role, and not expired."""
    if handoff_id is None:
        return None
    handoff = find_handoff(workflow, handoff_id)
    problem = None
    if handoff.status != "offered":
        problem = f"is {handoff.status}, not offered"
    elif handoff.to_role != role:
        problem = f"is offered to role {handoff.to_role!r}, not {role!r}"
    elif ctx.has_passed(handoff.expires_at):
        problem = f"expired at {handoff.expires_at}"
    if problem is not None:
        raise Conflict(
            f"handoff {handoff_id!r} {problem}",
            code="HANDOFF_STATE_CONFLICT",
            details={
                "handoff_id": handoff_id,
                "status": handoff.status,
                "to_role": handoff.to_role,
                "expires_at": handoff.expires_at,
            },
        )
    return handoff


def role_contract(admission: Admission | None) -> contracts.CompiledSession | None:
    """The contract a member session gets from its role when it brings none of its own."""
    return admission.role.compiled if admission is not None else None


def admit(
    ctx: Context, store: Workflows, tenant: str, admission: Admission, session: Session
) -> None:
    """Apply a checked admission: make or join the workflow, accept the handoff."""
    workflow = admission.workflow
    if admission.spec is not None:
        workflow = _new_workflow(ctx, store, tenant, admission, session)
    assert workflow is not None
    workflow.members.append(session.session_id)
    handoff = admission.handoff
    if handoff is not None:
        handoff.status = "accepted"
        handoff.child_session_id = session.session_id
        handoff.updated_at = ctx.now()
    session.workflow = WorkflowMembership(
        workflow_id=workflow.workflow_id,
        role=admission.role.name,
        type=admission.type,
        parent_session_id=admission.parent_session_id,
        handoff_id=handoff.handoff_id if handoff is not None else None,
    )


def _new_workflow(
    ctx: Context, store: Workflows, tenant: str, admission: Admission, root: Session
) -> Workflow:
    spec = admission.spec
    assert spec is not None
    workflow_id = admission.workflow_id
    while workflow_id is None or (tenant, workflow_id) in store:
        workflow_id = ctx.ids.new("wf")
    workflow = Workflow(
        tenant=tenant,
        workflow_id=workflow_id,
        name=spec.name,
        roles=spec.roles,
        allowed_handoffs=list(spec.allowed_handoffs),
        max_cost_usd=spec.max_cost_usd,
        max_sessions=spec.max_sessions,
        root_session_id=root.session_id,
        created_at=ctx.now(),
    )
    store[(tenant, workflow_id)] = workflow
    return workflow


def membership_differs(session: Session, field: dict[str, Any] | None) -> bool:
    """True when a join's `workflow` field names another place than the session holds."""
    if field is None:
        return False
    current = session.workflow
    if current is None:
        return True
    wanted_id = field.get("workflow_id")
    return (
        current.type != field.get("type")
        or current.role != field.get("role")
        or (wanted_id is not None and wanted_id != current.workflow_id)
    )


# -- budget and view ----------------------------------------------------------------------


def cost_used(members: list[Session]) -> float:
    """What the member sessions have spent together."""
    return round(sum(member.counters.cost_usd for member in members), 10)


def budget_reasons(workflow: Workflow, members: list[Session]) -> list[Reason]:
    """`session_limit_exceeded` once the members' costs reach `limits.max_cost_usd`."""
    limit = workflow.max_cost_usd
    used = cost_used(members)
    if limit is None or used < limit:
        return []
    detail = f"workflow max_cost_usd {limit:g} reached (cost_used_usd {used:g})"
    return [Reason("session_limit_exceeded", detail)]


def workflow_view(workflow: Workflow, members: list[Session]) -> dict[str, Any]:
    """The Workflow object of §3.11."""
    killed = workflow.killed
    return {
        "workflow_id": workflow.workflow_id,
        "name": workflow.name,
        "status": workflow.status,
        "root_session_id": workflow.root_session_id,
        "roles": [role.to_dict() for role in workflow.roles.values()],
        "allowed_handoffs": [{"from": f, "to": t} for f, t in workflow.allowed_handoffs],
        "sessions": [_member_view(member) for member in members],
        "handoffs": [handoff.to_dict() for handoff in workflow.handoffs.values()],
        "budget": {"max_cost_usd": workflow.max_cost_usd, "cost_used_usd": cost_used(members)},
        "created_at": workflow.created_at,
        "killed": {"at": killed.at, "reason": killed.reason} if killed is not None else None,
    }


def _member_view(member: Session) -> dict[str, Any]:
    membership = member.workflow
    assert membership is not None
    return {
        "session_id": member.session_id,
        "role": membership.role,
        "type": membership.type,
        "status": member.status,
    }
