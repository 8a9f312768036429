"""The README's examples run as written."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vesanor_mock.config import Settings
from vesanor_mock.scenarios import fixtures_dir
from vesanor_mock.server import MockServer

README = Path(__file__).resolve().parents[1] / "README.md"


def shell_block(marker: str) -> str:
    """The first ```sh block after an HTML comment marker in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\s*```sh\n(.*?)```", text, re.DOTALL)
    assert found, f"no sh block after <!-- {marker} --> in README.md"
    return found.group(1)


@pytest.fixture
def default_server() -> Iterator[MockServer]:
    """A fresh server on the bundled default scenario, as `make serve` starts it."""
    settings = Settings(port=0, scenario=str(fixtures_dir() / "default.yaml"))
    with MockServer(settings) as server:
        yield server
        server.check()


def test_the_curl_walkthrough_drives_a_session_through_the_governed_cycle(
    default_server: MockServer,
) -> None:
    env = {**os.environ, "VESANOR_MOCK_URL": default_server.url}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell_block("walkthrough")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"code":"argument_invariant_failed"' in out
    assert '"code":"PREPARED_REQUEST_CONSUMED"' in out
    assert '"current":"refunded"' in out
    assert '"state_version":2' in out
    assert out.rstrip().endswith("}") and '"status":"killed"' in out.splitlines()[-1]
