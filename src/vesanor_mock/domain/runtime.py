"""The in-memory Runtime API: one method per endpoint, one lock, plain dicts in and out."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from ..errors import Conflict, FieldError, Unprocessable, ValidationFailed
from . import contracts, cycle, handoffs, receipts, workflows
from .cycle import ForceBlock
from .models import Plan, Session, ToolFilter, Workflow
from .policy import Reason
from .sessionops import (
    Context,
    add_label,
    bump,
    ensure_fence,
    ensure_not_killed,
    ensure_writable,
    kill,
    label_bytes,
    over_limit,
    session_not_found,
    touch,
)
from .views import pending_view, session_view, unresolved_ids

Answer = dict[str, Any]
COMPILED_KEPT = 256  # distinct request contracts kept compiled


class Runtime:
    """Authoritative state for every tenant. Thread-safe: each operation holds one lock."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.lock = threading.RLock()
        self.sessions: dict[tuple[str, str], Session] = {}
        self.plans: dict[tuple[str, str, str], Plan] = {}
        self._compiled: dict[str, contracts.CompiledSession] = {}
        self.workflows: workflows.Workflows = {}
        self._sessions_of: dict[str, int] = {}  # sessions per tenant, for the cap

    # -- lookups --------------------------------------------------------------------------

    def session(self, tenant: str, session_id: str) -> Session:
        """The tenant's session, or 404 exactly as if it never existed."""
        found = self.sessions.get((tenant, session_id))
        if found is None:
            raise session_not_found(session_id)
        return found

    def approved_plan(self, tenant: str, agent: str, environment: str) -> Plan | None:
        """The tenant's approved plan for an agent and environment, if any."""
        plan = self.plans.get((tenant, agent, environment))
        return plan if plan is not None and plan.status == "approved" else None

    # -- plans -----------------------------------------------------------------------------

    def add_plan(
        self,
        tenant: str,
        agent: str,
        environment: str,
        status: str,
        compiled_session: dict[str, Any] | None,
        compiled: contracts.CompiledSession | None = None,
    ) -> Plan:
        """Register a plan; an approved one is compiled now unless `compiled` is given."""
        with self.lock:
            plan = Plan(
                tenant=tenant,
                agent=agent,
                environment=environment,
                status=status,
                plan_id=self.ctx.ids.new("plan"),
                compiled_session=compiled_session,
                created_at=self.ctx.now(),
            )
            if status == "approved" and compiled_session is not None:
                plan.compiled = (
                    compiled
                    if compiled is not None
                    else contracts.compile_session(compiled_session)
                )
                plan.compiled_hash = plan.compiled.compiled_hash
                plan.approval_id = self.ctx.ids.new("appr")
            elif status == "draft":
                plan.draft_id = f"draft_{plan.plan_id.removeprefix('plan_')}"
            self.plans[(tenant, agent, environment)] = plan
            return plan

    def governance_plan(self, tenant: str, agent: str, environment: str) -> Answer:
        """§3.17: the plan status of an agent in an environment."""
        with self.lock:
            plan = self.plans.get((tenant, agent, environment))
            answer: Answer = {
                "agent": agent,
                "environment": environment,
                "status": "no_plan",
                "plan_id": None,
                "draft": None,
                "approved": None,
            }
            if plan is None:
                return answer
            if plan.status == "invalid":
                raise Unprocessable(
                    f"the approved plan for {agent!r} in {environment} has a broken artifact",
                    code="APPROVED_ARTIFACT_INVALID",
                    details={"plan_id": plan.plan_id, "agent": agent, "environment": environment},
                )
            answer["status"] = plan.status
            answer["plan_id"] = plan.plan_id
            if plan.status == "draft":
                answer["draft"] = {
                    "draft_id": plan.draft_id,
                    "version": plan.draft_version,
                    "updated_at": plan.created_at,
                }
            else:
                answer["approved"] = {
                    "approval_id": plan.approval_id,
                    "approved_at": plan.created_at,
                    "compiled_hash": plan.compiled_hash,
                    "compiled_session": plan.compiled_session,
                }
            return answer

    # -- sessions --------------------------------------------------------------------------

    def create_session(self, tenant: str, body: dict[str, Any]) -> tuple[int, Answer]:
        """§3.1: create a session (201) or join an existing one with the same agent (200)."""
        with self.lock:
            session_id = body.get("session_id")
            if session_id is not None and (tenant, session_id) in self.sessions:
                return 200, self._join(self.sessions[(tenant, session_id)], body)
            options = self.ctx.options
            over_limit(
                "max_sessions_per_tenant",
                options.max_sessions_per_tenant,
                self._sessions_of.get(tenant, 0),
                1,
                f"tenant {tenant!r} holds its most sessions",
            )
            admission = workflows.check_admission(
                self.ctx, self.workflows, tenant, body.get("workflow")
            )
            if (body.get("workflow") or {}).get("type") == "root":
                held = sum(1 for owner, _ in self.workflows if owner == tenant)
                over_limit(
                    "max_workflows_per_tenant",
                    options.max_workflows_per_tenant,
                    held,
                    1,
                    f"tenant {tenant!r} holds its most workflows",
                )
            contract, source = self._resolve_contract(
                tenant, body, workflows.role_contract(admission)
            )
            session = self._new_session(tenant, body, contract, source)
            if admission is not None:
                workflows.admit(self.ctx, self.workflows, tenant, admission, session)
            self.sessions[(tenant, session.session_id)] = session
            self._sessions_of[tenant] = self._sessions_of.get(tenant, 0) + 1
            return 201, {"session": session_view(session), "lease": session.lease.to_dict()}

    def _join(self, session: Session, body: dict[str, Any]) -> Answer:
        if session.agent != body["agent"] or workflows.membership_differs(
            session, body.get("workflow")
        ):
            place = session.workflow
            where = f"role {place.role!r} of {place.workflow_id!r}" if place else "no workflow"
            raise Conflict(
                f"session {session.session_id!r} exists with agent {session.agent!r} in {where}",
                code="SESSION_EXISTS_MISMATCH",
                details={
                    "session_id": session.session_id,
                    "agent": session.agent,
                    "workflow": place.to_dict() if place else None,
                },
            )
        return {"session": session_view(session), "lease": session.lease.to_dict()}

    def _compile(self, raw: dict[str, Any]) -> contracts.CompiledSession:
        """Compile a request's contract once per distinct contract (compiled sessions are
        read-only, so sessions with the same contract share one)."""
        try:
            digest = contracts.compiled_hash(raw)
        except (TypeError, ValueError):
            return contracts.compile_session(raw)  # reports why it cannot be hashed
        found = self._compiled.get(digest)
        if found is None:
            found = contracts.compile_session(raw)
            if len(self._compiled) >= COMPILED_KEPT:
                del self._compiled[next(iter(self._compiled))]
            self._compiled[digest] = found
        return found

    def _resolve_contract(
        self,
        tenant: str,
        body: dict[str, Any],
        role_contract: contracts.CompiledSession | None = None,
    ) -> tuple[contracts.CompiledSession | None, str]:
        """The contract: the request's, a plan by hash, the workflow role's, the approved plan."""
        given = body.get("contract")
        agent, environment = body["agent"], body.get("environment", "development")
        plan = self.approved_plan(tenant, agent, environment)
        if given is not None and "compiled_session" in given:
            compiled = self._compile(given["compiled_session"])
            if compiled.agent != agent:
                message = f"the contract is for agent {compiled.agent!r}, the request for {agent!r}"
                path = "/contract/compiled_session/agent"
                raise ValidationFailed([FieldError(path, message, "agent")])
            if plan is not None and plan.compiled_hash == compiled.compiled_hash:
                return plan.compiled, "plan"  # the approved artifact, sent inline (§2.1)
            return compiled, "request"
        if given is not None and "compiled_hash" in given:
            wanted = given["compiled_hash"]
            if plan is not None and plan.compiled_hash == wanted:
                return plan.compiled, "plan"
            raise ValidationFailed(
                [
                    FieldError(
                        "/contract/compiled_hash",
                        f"{wanted} is not the approved plan of agent {agent!r} in {environment}",
                        "exists",
                    )
                ]
            )
        if role_contract is not None:
            return role_contract, "request"
        if plan is not None and plan.compiled is not None:
            return plan.compiled, "plan"
        return None, "none"

    def _attachment(self, tenant: str, body: dict[str, Any], contract: Any) -> str:
        """§2.1: attached, or why not: no plan, or a plan whose artifact is broken."""
        if contract is not None:
            return "attached"
        plan = self.plans.get((tenant, body["agent"], body.get("environment", "development")))
        return "artifact_invalid" if plan is not None and plan.status == "invalid" else "no_plan"

    def _new_session(
        self,
        tenant: str,
        body: dict[str, Any],
        contract: contracts.CompiledSession | None,
        source: str,
    ) -> Session:
        ctx = self.ctx
        environment = body.get("environment", "development")
        unmatched = body.get("unmatched_policy")
        if contract is not None and unmatched is not None:
            contract = dataclasses.replace(contract, unmatched_policy=unmatched)
        mode = body.get("mode", "enforce")
        now = ctx.now()
        return Session(
            tenant=tenant,
            session_id=body.get("session_id") or ctx.ids.new("sess"),
            agent=body["agent"],
            environment=environment,
            mode=mode,
            enforcement=body.get("enforcement") or default_enforcement(mode, source, environment),
            lease=ctx.new_lease(1, body.get("holder_id")),
            contract=contract,
            governance_source=source,
            attachment=self._attachment(tenant, body, contract),
            created_at=now,
            updated_at=now,
            phase=contract.initial_phase if contract is not None else "start",
            metadata=dict(body.get("metadata") or {}),
        )

    def seed_session(
        self,
        tenant: str,
        body: dict[str, Any],
        contract: contracts.CompiledSession | None,
        source: str,
    ) -> Session:
        """Create a scenario's pre-seeded session from create fields and a compiled contract."""
        with self.lock:
            session = self._new_session(tenant, body, contract, source)
            self.sessions[(tenant, session.session_id)] = session
            self._sessions_of[tenant] = self._sessions_of.get(tenant, 0) + 1
            return session

    def get_session(self, tenant: str, session_id: str, include_pending: bool = False) -> Answer:
        """§3.2: load a session, optionally with its pending calls."""
        with self.lock:
            return {
                "session": session_view(
                    self.session(tenant, session_id), include_pending=include_pending
                )
            }

    # -- the governed cycle ----------------------------------------------------------------

    def preflight(self, tenant: str, session_id: str, body: dict[str, Any]) -> Answer:
        """§3.3."""
        with self.lock:
            session = self.session(tenant, session_id)
            return cycle.preflight(self.ctx, session, body, self._workflow_limits)

    def propose(
        self,
        tenant: str,
        session_id: str,
        body: dict[str, Any],
        force_block: ForceBlock | None = None,
    ) -> Answer:
        """§3.4."""
        with self.lock:
            return cycle.propose(self.ctx, self.session(tenant, session_id), body, force_block)

    def receipt(self, tenant: str, session_id: str, body: dict[str, Any]) -> Answer:
        """§3.5."""
        with self.lock:
            return receipts.receipt(self.ctx, self.session(tenant, session_id), body)

    # -- controls --------------------------------------------------------------------------

    def add_label(self, tenant: str, session_id: str, body: dict[str, Any]) -> Answer:
        """§3.6: append a label; allowed on killed and compromised sessions."""
        with self.lock:
            session = self.session(tenant, session_id)
            options = self.ctx.options
            over_limit(
                "max_labels_per_session",
                options.max_labels_per_session,
                session.user_labels,
                1,
                f"session {session_id!r} holds its most labels",
            )
            size = label_bytes(body)
            over_limit(
                "max_label_bytes_per_session",
                options.max_label_bytes_per_session,
                session.label_bytes,
                size,
                f"session {session_id!r} holds its most label bytes",
            )
            label = add_label(
                self.ctx, session, body["key"], body.get("value"), dict(body.get("metadata") or {})
            )
            session.user_labels += 1
            session.label_bytes += size
            return {"label": label.to_dict()}

    def set_tool_filter(self, tenant: str, session_id: str, body: dict[str, Any]) -> Answer:
        """§3.7: replace the tool filter; `{}` clears it."""
        with self.lock:
            session = self.session(tenant, session_id)
            ensure_writable(session)
            ensure_fence(self.ctx, session, body.get("fence_token"))
            allow = body.get("allow")
            deny = list(body.get("deny") or [])
            no_filter = allow is None and not deny
            session.tool_filter = (
                None if no_filter else ToolFilter(None if allow is None else list(allow), deny)
            )
            bump(self.ctx, session)
            return {"session": session_view(session)}

    def report_bypass(self, tenant: str, session_id: str, body: dict[str, Any]) -> Answer:
        """§3.8: mark the session compromised; every report leaves a `bypass:<n>` label."""
        with self.lock:
            session = self.session(tenant, session_id)
            ensure_not_killed(session)
            session.bypass_reports += 1
            if not session.bypass_detected:
                session.bypass_detected = True
                session.authority_state = "compromised"
                bump(self.ctx, session)
            add_label(
                self.ctx, session, f"bypass:{session.bypass_reports}", None, dict(body), system=True
            )
            return {"session": session_view(session)}

    def kill(self, tenant: str, session_id: str, body: dict[str, Any]) -> Answer:
        """§3.9: kill once; later kills answer the session unchanged."""
        with self.lock:
            session = self.session(tenant, session_id)
            kill(self.ctx, session, body.get("reason"), body.get("actor") or "api")
            return {"session": session_view(session)}

    def recover(self, tenant: str, session_id: str, body: dict[str, Any]) -> Answer:
        """§3.10: rotate the lease and fence; state_version is unchanged."""
        with self.lock:
            session = self.session(tenant, session_id)
            ensure_writable(session)
            holder = body.get("holder_id") or session.lease.holder_id
            session.lease = self.ctx.new_lease(session.lease.fence_token + 1, holder)
            touch(self.ctx, session)
            return {
                "session": session_view(session),
                "lease": session.lease.to_dict(),
                "pending_calls": pending_view(session),
                "unresolved": unresolved_ids(session),
            }

    # -- workflows (PROTOCOL.md §3.11–§3.16) ------------------------------------------------

    def workflow(self, tenant: str, workflow_id: str) -> Workflow:
        """The tenant's workflow, or 404 exactly as if it never existed."""
        return workflows.find_workflow(self.workflows, tenant, workflow_id)

    def members(self, workflow: Workflow) -> list[Session]:
        """A workflow's sessions, in the order they joined."""
        return [self.sessions[(workflow.tenant, sid)] for sid in workflow.members]

    def _workflow_limits(self, session: Session) -> list[Reason]:
        """The workflow budget, checked at every member's preflight (§3.12)."""
        place = session.workflow
        if place is None:
            return []
        workflow = self.workflows[(session.tenant, place.workflow_id)]
        return workflows.budget_reasons(workflow, self.members(workflow))

    def get_workflow(self, tenant: str, workflow_id: str) -> Answer:
        """§3.11: a workflow with its members, handoffs and budget."""
        with self.lock:
            workflow = self.workflow(tenant, workflow_id)
            return {"workflow": workflows.workflow_view(workflow, self.members(workflow))}

    def offer_handoff(self, tenant: str, session_id: str, body: dict[str, Any]) -> Answer:
        """§3.13: offer work from a member session's role to another role."""
        with self.lock:
            session = self.session(tenant, session_id)
            place = session.workflow
            workflow = self.workflows.get((tenant, place.workflow_id)) if place else None
            return handoffs.offer(self.ctx, session, workflow, body)

    def complete_handoff(
        self, tenant: str, workflow_id: str, handoff_id: str, body: dict[str, Any]
    ) -> Answer:
        """§3.14: complete an open handoff (a repeated completion answers the first)."""
        with self.lock:
            return handoffs.complete(self.ctx, self.workflow(tenant, workflow_id), handoff_id, body)

    def reclaim_handoff(
        self, tenant: str, workflow_id: str, handoff_id: str, body: dict[str, Any]
    ) -> Answer:
        """§3.15: take back an open handoff; a still-active child is killed."""
        with self.lock:
            workflow = self.workflow(tenant, workflow_id)
            return handoffs.reclaim(
                self.ctx, workflow, handoff_id, body, lambda sid: self.session(tenant, sid)
            )

    def kill_workflow(self, tenant: str, workflow_id: str, body: dict[str, Any]) -> Answer:
        """§3.16: kill the workflow and every member; idempotent."""
        with self.lock:
            workflow = self.workflow(tenant, workflow_id)
            members = self.members(workflow)
            handoffs.kill_workflow(self.ctx, workflow, members, body.get("reason"))
            return {"workflow": workflows.workflow_view(workflow, members)}

    # -- scenario effects (PROTOCOL.md §5) ------------------------------------------------

    def scenario_kill(self, tenant: str, session_id: str, reason: str | None) -> None:
        """Kill a session on a scenario rule's behalf (`actor: scenario`)."""
        with self.lock:
            kill(self.ctx, self.session(tenant, session_id), reason, "scenario")

    def compromise(self, tenant: str, session_id: str) -> None:
        """Mark a session compromised as a bypass report would, without a label."""
        with self.lock:
            session = self.session(tenant, session_id)
            if session.status != "killed" and not session.bypass_detected:
                session.bypass_detected = True
                session.authority_state = "compromised"
                bump(self.ctx, session)

    def expire_lease(self, tenant: str, session_id: str) -> None:
        """Make the session's lease expire now."""
        with self.lock:
            session = self.session(tenant, session_id)
            session.lease.expires_at = self.ctx.now()
            touch(self.ctx, session)

    def require_session(self, tenant: str, session_id: str) -> None:
        """Raise 404 unless the session exists for this tenant."""
        with self.lock:
            self.session(tenant, session_id)


def default_enforcement(mode: str, source: str, environment: str) -> str:
    """§2.1: enforcement when the create request does not name one."""
    if mode in ("shadow", "log-only"):
        return "monitor"
    if source == "request":
        return "protective"
    return {"development": "monitor", "staging": "advisory"}.get(environment, "protective")
