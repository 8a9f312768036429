"""Example contracts for tests: a refund bot, as a fresh compiled_session dict each call."""

from __future__ import annotations

import copy
from typing import Any


def refund_tools() -> dict[str, dict[str, Any]]:
    """The refund bot's tool contracts, keyed by tool name."""
    return {
        "verify_customer": {
            "tool": "verify_customer",
            "side_effect": "read",
            "evidence_class": "local_transaction",
            "commit_requirement": "none",
            "transitions": {"advances_to": "verified"},
        },
        "issue_refund": {
            "tool": "issue_refund",
            "side_effect": "financial",
            "evidence_class": "local_transaction",
            "commit_requirement": "acknowledged",
            "transitions": {"valid_in_phases": ["verified"], "advances_to": "refunded"},
            "preconditions": [
                {
                    "requires_prior_tool": "verify_customer",
                    "with_output": [{"path": "$.verified", "equals": True}],
                }
            ],
            "argument_value_invariants": [
                {"path": "$.amount", "operator": "lte", "value": 500, "id": "refund-cap"}
            ],
        },
        "lookup_order": {
            "tool": "lookup_order",
            "side_effect": "read",
            "evidence_class": "local_transaction",
            "commit_requirement": "none",
        },
        "delete_account": {
            "tool": "delete_account",
            "side_effect": "destructive",
            "evidence_class": "local_transaction",
            "commit_requirement": "acknowledged",
            "gate": "block",
        },
        "escalate": {
            "tool": "escalate",
            "side_effect": "write",
            "evidence_class": "local_transaction",
            "commit_requirement": "none",
            "checkpoint": {"reason": "human approval"},
        },
    }


def refund_contract(**overrides: Any) -> dict[str, Any]:
    """A fresh refund-bot compiled_session; keyword arguments replace top-level fields.

    Phases start -> verified -> refunded (terminal). Tools: verify_customer (read, advances
    to verified), issue_refund (financial, only in verified, needs a verified customer,
    amount <= 500, acknowledged commit, advances to refunded), lookup_order (read),
    delete_account (destructive, gate block) and escalate (write, checkpoint).
    """
    contract: dict[str, Any] = {
        "schema_version": "1.0",
        "agent": "refund-bot",
        "phases": [
            {"name": "start", "initial": True},
            {"name": "verified"},
            {"name": "refunded", "terminal": True},
        ],
        "transitions": {"start": ["verified"], "verified": ["refunded"], "refunded": []},
        "session_limits": {
            "max_steps": 20,
            "max_tool_calls": 10,
            "max_cost_per_session": 5.0,
            "max_calls_per_tool": {"lookup_order": 3},
            "loop_detection": {"window": 5, "threshold": 3},
            "circuit_breaker": {"consecutive_blocks": 5, "consecutive_errors": 3},
        },
        "risk_defaults": {"read": "allow", "write": "allow", "destructive": "block"},
        "unmatched_policy": "block",
        "tools": refund_tools(),
    }
    contract.update(copy.deepcopy(overrides))
    return contract
