"""What a test holds of a mock (the pytest plugin's handle), without pytest in it.

A `MockHandle` wraps one MockService, served by a MockServer or in-process. `begin()`
puts it back in its starting scenario (or loads one) before a test; `finish()` after the
test raises the server's internal errors, then the loaded scenario's unmet expectations
with a report of what the mock saw. Scenarios are looked up by name (`find_scenario`) and
parsed once per file version.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import ExpectationFailed, MockClient, Transport, format_findings, format_report
from .domain.expect import verify
from .domain.world import DEFAULT_API_KEY
from .http.app import MockService
from .scenarios.files import find_scenario
from .scenarios.loading import Scenario
from .server import ServerErrors

if TYPE_CHECKING:
    from .http.inprocess import InProcessMock

API_PREFIX = "/api/v1"


class MockHandle:
    """One mock as a test sees it: `url`, `api_url`, `api_key`, `control`, `load()`."""

    def __init__(
        self,
        service: MockService,
        url: str,
        folders: Sequence[str | Path] = (),
        transport: Transport | None = None,
    ) -> None:
        self.service = service
        self.url = url
        self.folders = [Path(folder) for folder in folders]
        self.control = MockClient(url, token=service.settings.control_token, transport=transport)
        self.initial = service.scenario
        self.verify = True
        self._parsed: dict[tuple[str, int, int], tuple[Scenario, Stamp]] = {}

    @property
    def api_url(self) -> str:
        """The base URL of the Runtime API, e.g. `http://127.0.0.1:54321/api/v1`."""
        return self.url + API_PREFIX

    @property
    def api_keys(self) -> dict[str, str]:
        """Every API key of the loaded scenario, with its tenant."""
        return dict(self.service.spec.api_keys)

    @property
    def api_key(self) -> str:
        """An API key to use: `vsk_test_default` when the scenario has it, else its first."""
        keys = self.service.spec.api_keys
        return DEFAULT_API_KEY if DEFAULT_API_KEY in keys else next(iter(keys))

    @property
    def scenario(self) -> Scenario | None:
        """The scenario loaded now."""
        return self.service.scenario

    def load(self, scenario: str | Path) -> Scenario:
        """Load a scenario by name (scenario folder, then bundled) or path; resets all state."""
        path = find_scenario(scenario, self.folders)
        stat = os.stat(path)
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        cached = self._parsed.get(key)
        if cached is None or _stamp(cached[0].files) != cached[1]:  # it or a base changed
            loaded = self.service.load_path(path)
            self._parsed[key] = (loaded, _stamp(loaded.files))
            return loaded
        self.service.load(cached[0])
        return cached[0]

    def begin(self, scenario: str | Path | None = None, *, verify: bool = True) -> None:
        """Before a test: forget old errors; load `scenario`, or go back to the initial one.

        `verify=False`: the scenario is plain setup, its `expect` is not checked after.
        """
        self.take_errors()
        self.verify = verify
        if scenario is not None:
            self.load(scenario)
        elif self.initial is not None and self.service.scenario is not self.initial:
            self.service.load(self.initial)
        else:
            self.service.reset()

    def journal(self) -> list[dict[str, Any]]:
        """Every journal entry, oldest first (read directly, no request)."""
        return [entry.to_dict() for entry in self.service.world.journal.entries()]

    def take_errors(self) -> list[str]:
        """The server's internal errors since the last call, forgotten once taken."""
        errors = self.service.server_errors
        found = list(errors)
        errors.clear()
        return found

    def check(self) -> None:
        """Raise ServerErrors if the server had internal errors (500s)."""
        __tracebackhide__ = True
        found = self.take_errors()
        if found:
            raise ServerErrors("vesanor-mock had internal errors:\n" + "\n".join(found))

    def findings(self) -> list[dict[str, Any]]:
        """The client checks of this test so far (docs/checks.md), read directly."""
        world = self.service.world
        found = world.checker.findings(pending_status=world.pending_status)
        return [finding.to_dict() for finding in found]

    def finish(self, findings: bool = True) -> list[dict[str, Any]]:
        """After a test: raise internal errors, then unmet expectations of the scenario, then
        error findings (unless `findings` is False); answer the findings (warnings only)."""
        __tracebackhide__ = True  # pytest shows the test, not this frame
        self.check()
        expect = self.service.spec.expect
        kept = self.service.world.journal
        entries = kept.entries()
        evicted = kept.total - len(kept)
        failures = verify(expect, entries, evicted) if expect and self.verify else []
        if failures:
            name = self.scenario.name if self.scenario else None
            report = format_report(len(expect), failures, [e.to_dict() for e in entries])
            heading = f"scenario {name!r}: expectations not met after the test"
            raise ExpectationFailed(f"{heading}\n{report}")
        if not findings:
            return []
        found = self.findings()
        if any(f["severity"] == "error" for f in found):
            journal = [e.to_dict() for e in entries]
            heading = "the client misused the protocol during the test"
            raise ExpectationFailed("\n".join([heading, *format_findings(found, journal)]))
        return found


Stamp = tuple[tuple[str, int, int] | None, ...]


def _stamp(files: Sequence[str]) -> Stamp:
    """Modification time and size of each file a scenario was read from (its bases)."""
    found: list[tuple[str, int, int] | None] = []
    for name in files:
        try:
            stat = os.stat(name)
        except OSError:
            found.append(None)
            continue
        found.append((name, stat.st_mtime_ns, stat.st_size))
    return tuple(found)


class InProcessHandle(MockHandle):
    """A handle on an in-process mock; `client` is a TestClient (the httpx API) on `url`."""

    def __init__(self, mock: InProcessMock, folders: Sequence[str | Path] = ()) -> None:
        super().__init__(mock.service, mock.url, folders, transport=mock.send)
        self.mock = mock
        self.client = mock.client


def in_process(service: MockService, folders: Sequence[str | Path] = ()) -> InProcessHandle:
    """An in-process handle on `service` (Starlette's TestClient, over httpx2)."""
    from .http.inprocess import InProcessMock

    return InProcessHandle(InProcessMock(service), folders)
