"""The soak script's smoke mode runs in CI: every answer valid, memory flat (bench/soak.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak.py"


def test_the_soak_smoke_run_answers_every_request_validly_with_flat_memory() -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--smoke"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert " 0 invalid" in summary, summary
    assert "answers validated" in summary
