"""Judge tool calls against a compiled contract and the session's state (PROTOCOL.md §4).

The policy only reads: it never changes a session. Decisions it makes where the protocol
is silent:

- A tool without a contract under `unmatched_policy: allow` skips the checks that need its
  contract (phase, risk, preconditions, invariants, checkpoint), but `forbidden_in_state`
  (another tool's `forbids_after` may name it) and every limit of step 8 still apply.
- A precondition's `with_output` checks the latest committed output of the required tool;
  one reason per failing check.
- `loop_detected` compares arguments as JSON values (`1` equals `1.0`, `true` is not `1`);
  with a window of 0 only the earlier calls of the same proposal count.
- A checkpoint decision whose `approved` is anything but `true` is a denial (fail closed).
- A commit whose tool advances to the phase the session is already in changes nothing
  and is not a refused transition.
- `execution_constraints.arguments` are checked like argument invariants (same reason code,
  detail "Execution constraint at …"), after them. A `ref` that fails, including one whose
  binding is not set yet (fail closed), is `binding_mismatch` with `path` and `operator`.
- `narrow` drops repeated names from the offered tools (first occurrence kept). It applies
  check 6 in full, `with_output` included, as validation does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .contracts import CompiledSession, Invariant, SessionLimits, ToolContract
from .jsonpath import describe
from .models import CommittedCall, Session, ToolFilter
from .operators import failure_detail, json_equal


@dataclass(frozen=True)
class Reason:
    """Why a call is blocked or a preflight refused: a code, a detail, and for checks a path."""

    code: str
    detail: str
    path: str | None = None
    operator: str | None = None
    rule_id: str | None = None

    def to_dict(self) -> dict[str, str]:
        """Wire form; `path`, `operator` and `rule_id` only when set."""
        wire = {"code": self.code, "detail": self.detail}
        for key in ("path", "operator", "rule_id"):
            value = getattr(self, key)
            if value is not None:
                wire[key] = value
        return wire


@dataclass
class PolicyView:
    """The parts of a session the policy reads (references, not copies)."""

    phase: str
    tool_filter: ToolFilter | None
    committed: list[CommittedCall]
    calls_per_tool: dict[str, int]
    tool_calls: int
    cost_usd: float
    forbidden: set[str]
    latest: dict[str, Any] | None = None  # latest committed output by tool, when kept
    bindings: dict[str, Any] | None = None  # the session's bindings, for `ref`

    @classmethod
    def of(cls, session: Session) -> PolicyView:
        """The view of a session's current state."""
        return cls(
            phase=session.phase,
            tool_filter=session.tool_filter,
            committed=session.committed,
            calls_per_tool=session.counters.calls_per_tool,
            tool_calls=session.counters.tool_calls,
            cost_usd=session.counters.cost_usd,
            forbidden=session.forbidden,
            latest=session.latest_output,
            bindings=session.bindings,
        )


def judge_call(
    contract: CompiledSession | None,
    view: PolicyView,
    name: str,
    arguments: dict[str, Any],
    *,
    earlier: Sequence[tuple[str, dict[str, Any]]] = (),
    checkpoint_decision: dict[str, Any] | None = None,
) -> list[Reason]:
    """Every reason that blocks this call, in the order of §4.2 (steps 1 to 9)."""
    reasons = [r for r in [_filtered(view, name)] if r is not None]
    if contract is None:
        return reasons
    tool = contract.tools.get(name)
    if tool is None and contract.unmatched_policy == "block":
        detail = f"No contract for tool {name} (unmatched_policy: block)"
        reasons.append(Reason("no_contract", detail))
    if tool is not None and (wrong := _wrong_phase(tool, view)) is not None:
        reasons.append(wrong)
    if name in view.forbidden:
        reasons.append(_forbidden(contract, view, name))
    if tool is not None:
        reasons += _risk(contract, tool)
        reasons += _preconditions(tool, view)
        reasons += _invariants(tool.invariants, arguments, view.bindings, "Argument")
        reasons += _invariants(tool.constraints, arguments, view.bindings, "Execution constraint")
    reasons += _limits(contract.limits, view, name, arguments, earlier)
    if tool is not None:
        reasons += _checkpoint(tool, checkpoint_decision)
    return reasons


def _filtered(view: PolicyView, name: str) -> Reason | None:
    """Step 1: the session's tool filter."""
    if view.tool_filter is not None and view.tool_filter.removes(name):
        return Reason("tool_filtered", f"Tool {name} is removed by the session's tool filter")
    return None


def _wrong_phase(tool: ToolContract, view: PolicyView) -> Reason | None:
    """Step 3: `valid_in_phases` must hold the current phase."""
    if tool.valid_in_phases is None or view.phase in tool.valid_in_phases:
        return None
    phases = ", ".join(tool.valid_in_phases)
    detail = f"Tool {tool.name} is valid in phases [{phases}], not in {view.phase}"
    return Reason("wrong_phase", detail)


def _forbidden(contract: CompiledSession, view: PolicyView, name: str) -> Reason:
    """Step 4: a committed tool's `forbids_after` names this one."""
    for call in reversed(view.committed):
        tool = contract.tools.get(call.tool_name)
        if tool is not None and name in tool.forbids_after:
            return Reason("forbidden_in_state", f"Tool {name} is forbidden after {tool.name}")
    return Reason("forbidden_in_state", f"Tool {name} is forbidden in the current state")


def _risk(contract: CompiledSession, tool: ToolContract) -> list[Reason]:
    """Step 5: the tool's gate, else the risk default of its side effect."""
    if tool.gate == "block":
        return [Reason("risk_default_block", f"Tool {tool.name} has gate: block")]
    if tool.gate != "allow" and contract.risk_defaults.get(tool.side_effect) == "block":
        detail = f"risk_defaults blocks {tool.side_effect} tools ({tool.name})"
        return [Reason("risk_default_block", detail)]
    return []


def latest_output(view: PolicyView, tool_name: str) -> tuple[bool, Any]:
    """(committed at least once, output of its latest commit) for a tool."""
    if view.latest is not None:
        return tool_name in view.latest, view.latest.get(tool_name)
    for call in reversed(view.committed):
        if call.tool_name == tool_name:
            return True, call.output
    return False, None


def _preconditions(tool: ToolContract, view: PolicyView) -> list[Reason]:
    """Step 6: required prior tools, and checks on their latest committed output."""
    reasons: list[Reason] = []
    for precondition in tool.preconditions:
        required = precondition.requires_prior_tool
        committed, output = latest_output(view, required)
        if not committed:
            reasons.append(Reason("precondition_not_met", f"Required prior tool: {required}"))
            continue
        for check in precondition.with_output:
            if not check.evaluate(output)[0]:
                detail = (
                    f"Output of {required} at {check.path} fails "
                    f"{check.operator} {describe(check.value)}"
                )
                reasons.append(Reason("precondition_not_met", detail, check.path, check.operator))
    return reasons


def _invariants(
    invariants: Sequence[Invariant],
    arguments: dict[str, Any],
    bindings: dict[str, Any] | None,
    what: str,
) -> list[Reason]:
    """Step 7: one reason per failing argument invariant or execution constraint."""
    reasons: list[Reason] = []
    for invariant in invariants:
        holds, found, actual = invariant.evaluate(arguments, bindings)
        if holds:
            continue
        if invariant.operator == "ref":
            code, detail = "binding_mismatch", _ref_detail(invariant, bindings, found, actual)
        else:
            code = "argument_invariant_failed"
            detail = f"{what} at {invariant.path}: " + failure_detail(
                invariant.operator, invariant.value, found, actual
            )
        reasons.append(Reason(code, detail, invariant.path, invariant.operator, invariant.rule_id))
    return reasons


def _ref_detail(
    invariant: Invariant, bindings: dict[str, Any] | None, found: bool, actual: Any
) -> str:
    """Why an argument does not match the session binding its `ref` names."""
    name = str(invariant.value)
    seen = describe(actual) if found else "nothing"
    if bindings is None or name not in bindings:
        return f"Argument at {invariant.path} must equal binding {name}, which is not set yet"
    expected = describe(bindings[name])
    return f"Argument at {invariant.path} must equal binding {name} ({expected}), found {seen}"


def _limits(
    limits: SessionLimits,
    view: PolicyView,
    name: str,
    arguments: dict[str, Any],
    earlier: Sequence[tuple[str, dict[str, Any]]],
) -> list[Reason]:
    """Step 8: session-wide limits, counting the earlier calls of the same proposal."""
    reasons: list[Reason] = []
    cap = limits.max_tool_calls
    if cap is not None and view.tool_calls + len(earlier) + 1 > cap:
        reasons.append(Reason("session_limit_exceeded", f"max_tool_calls {cap} reached"))
    budget = limits.max_cost_per_session
    if budget is not None and view.cost_usd > budget:
        detail = f"max_cost_per_session {describe(budget)} exceeded (cost_usd {view.cost_usd})"
        reasons.append(Reason("session_limit_exceeded", detail))
    per_tool = limits.max_calls_per_tool.get(name)
    if per_tool is not None:
        used = view.calls_per_tool.get(name, 0) + sum(1 for other, _ in earlier if other == name)
        if used + 1 > per_tool:
            detail = f"max_calls_per_tool {name} {per_tool} reached"
            reasons.append(Reason("max_calls_per_tool_exceeded", detail))
    loop = _loop(limits, view, name, arguments, earlier)
    return reasons + ([loop] if loop is not None else [])


def _loop(
    limits: SessionLimits,
    view: PolicyView,
    name: str,
    arguments: dict[str, Any],
    earlier: Sequence[tuple[str, dict[str, Any]]],
) -> Reason | None:
    """Step 8: this call would be the `threshold`-th equal call within the window."""
    window, threshold = limits.loop_window, limits.loop_threshold
    if window is None or threshold is None:
        return None
    recent = view.committed[-window:] if window > 0 else []
    same = sum(1 for c in recent if c.tool_name == name and json_equal(c.arguments, arguments))
    same += sum(1 for other, args in earlier if other == name and json_equal(args, arguments))
    if same + 1 < threshold:
        return None
    detail = (
        f"Call {same + 1} to {name} with equal arguments within the last {window} committed "
        f"calls (threshold {threshold})"
    )
    return Reason("loop_detected", detail)


def _checkpoint(tool: ToolContract, decision: dict[str, Any] | None) -> list[Reason]:
    """Step 9: a checkpointed tool needs an approving decision."""
    if tool.checkpoint is None:
        return []
    why = tool.checkpoint.get("reason")
    suffix = f" ({why})" if why else ""
    if decision is None:
        detail = f"Tool {tool.name} needs a checkpoint decision{suffix}"
        return [Reason("checkpoint_required", detail)]
    if decision.get("approved") is not True:
        approver = decision.get("approver")
        by = f" by {approver}" if approver else ""
        return [Reason("checkpoint_denied", f"Checkpoint for {tool.name} denied{by}{suffix}")]
    return []


def narrow(
    contract: CompiledSession | None, view: PolicyView, offered: list[str] | None
) -> tuple[list[str], list[dict[str, str]]]:
    """Preflight narrowing (§3.3): (visible tools in offered order, [{tool, reason}])."""
    if offered is None:
        offered = sorted(contract.tools) if contract is not None else []
    visible: list[str] = []
    narrowed: list[dict[str, str]] = []
    seen: set[str] = set()
    for name in offered:
        if name in seen:
            continue
        seen.add(name)
        code = _narrowing(contract, view, name)
        if code is None:
            visible.append(name)
        else:
            narrowed.append({"tool": name, "reason": code})
    return visible, narrowed


def _narrowing(contract: CompiledSession | None, view: PolicyView, name: str) -> str | None:
    """The first narrowing reason code that applies to a tool, if any."""
    if _filtered(view, name) is not None:
        return "tool_filtered"
    if contract is None:
        return None
    tool = contract.tools.get(name)
    if tool is None and contract.unmatched_policy == "block":
        return "no_contract"
    if tool is not None and _wrong_phase(tool, view) is not None:
        return "wrong_phase"
    if name in view.forbidden:
        return "forbidden_in_state"
    if tool is not None and _preconditions(tool, view):
        return "precondition_not_met"
    return None


def preflight_limits(
    contract: CompiledSession | None, view: PolicyView, steps: int
) -> list[Reason]:
    """Why a preflight is refused by the contract's limits: max_steps, then the cost budget."""
    if contract is None:
        return []
    limits = contract.limits
    reasons: list[Reason] = []
    if limits.max_steps is not None and steps >= limits.max_steps:
        reasons.append(Reason("session_limit_exceeded", f"max_steps {limits.max_steps} reached"))
    budget = limits.max_cost_per_session
    if budget is not None and view.cost_usd >= budget:
        detail = f"max_cost_per_session {describe(budget)} reached (cost_usd {view.cost_usd})"
        reasons.append(Reason("session_limit_exceeded", detail))
    return reasons


def phase_after_commit(
    contract: CompiledSession | None, current_phase: str, tool_name: str
) -> tuple[str, bool]:
    """(phase after a commit of this tool, whether its `advances_to` was refused)."""
    tool = contract.tools.get(tool_name) if contract is not None else None
    if contract is None or tool is None or tool.advances_to in (None, current_phase):
        return current_phase, False
    if tool.advances_to in contract.transitions.get(current_phase, ()):
        return str(tool.advances_to), False
    return current_phase, True


def forbids_after(contract: CompiledSession | None, tool_name: str) -> tuple[str, ...]:
    """The tools a commit of this tool forbids from then on."""
    tool = contract.tools.get(tool_name) if contract is not None else None
    return tool.forbids_after if tool is not None else ()


def checkpoint_info(
    contract: CompiledSession | None, name: str, decision: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The Call's `checkpoint` field ({reason, status, approver}), or None without one."""
    tool = contract.tools.get(name) if contract is not None else None
    if tool is None or tool.checkpoint is None:
        return None
    if decision is None:
        status = "required"
    else:
        status = "approved" if decision.get("approved") is True else "denied"
    approver = decision.get("approver") if decision is not None else None
    return {"reason": tool.checkpoint.get("reason"), "status": status, "approver": approver}
