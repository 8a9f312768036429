"""Garbage-collector policy for a dedicated server process: short pauses on a growing heap.

The mock keeps every session it is given until a reset, so its heap grows during a run,
and CPython's full (generation 2) collections scan all of it: on 20,000 sessions a full
collection paused the server for about a second, and collections took 45% of its time.
After each full collection this policy freezes the survivors (`gc.freeze()`), so the next
one only scans what was made since. Objects that die later are still freed by reference
counting; only garbage *cycles* among frozen objects would stay, and a world's state has
none (tests/test_gcpolicy.py checks that a reset frees the old world without the cycle
collector). It is installed by `vesanor-mock serve` only, never inside a test process.
"""

from __future__ import annotations

import gc
from typing import Any

_installed = False


def _freeze_after_full_collection(phase: str, info: dict[str, Any]) -> None:
    """gc callback: move the survivors of a full collection out of the collector's sight."""
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def install() -> None:
    """Freeze what start-up made, then after every full collection (idempotent)."""
    global _installed
    if not _installed:
        gc.collect()
        gc.freeze()
        gc.callbacks.append(_freeze_after_full_collection)
        _installed = True


def uninstall() -> None:
    """Remove the policy and give the frozen objects back to the collector."""
    global _installed
    if _installed:
        gc.callbacks.remove(_freeze_after_full_collection)
        gc.unfreeze()
        _installed = False
