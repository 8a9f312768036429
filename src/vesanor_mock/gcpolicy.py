"""Garbage-collector policy for a dedicated server process: short pauses on a growing heap.

The mock keeps every session it is given until a reset, so its heap grows during a run,
and CPython's full (generation 2) collections scan all of it: on 20,000 sessions a full
collection paused the server for about a second, and collections took 45% of its time.
After each collection of the older generations (1 and 2) this policy freezes the survivors
(`gc.freeze()`): the collector then only ever scans young objects, and state that has
lived through two collections is left to reference counting. Objects that die later are
still freed that way; only garbage *cycles* among frozen objects would stay, and a world's
state has none (tests/test_gcpolicy.py checks that a reset frees the old world without the
cycle collector; 10,000 client connections left RSS as without the policy). It is
installed by `vesanor-mock serve` only, never inside a test process.
"""

from __future__ import annotations

import gc
from typing import Any

_installed = False


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """gc callback: move the survivors of an older-generation collection out of sight."""
    if phase == "stop" and info.get("generation", 0) >= 1:
        gc.freeze()


def install() -> None:
    """Freeze what start-up made, then after every generation 1 or 2 collection (idempotent)."""
    global _installed
    if not _installed:
        gc.collect()
        gc.freeze()
        gc.callbacks.append(_freeze_survivors)
        _installed = True


def uninstall() -> None:
    """Remove the policy and give the frozen objects back to the collector."""
    global _installed
    if _installed:
        gc.callbacks.remove(_freeze_survivors)
        gc.unfreeze()
        _installed = False
