"""Reload a scenario file when it changes on disk: a cheap `stat` poll in a daemon thread.

A change (modification time, size or inode) loads the file again, replacing all state. A
file that no longer loads changes nothing: the last good scenario stays, and the report
says so with every problem, line-numbered.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import ScenarioError
from .http.app import MockService

DEFAULT_INTERVAL = 0.5

Signature = tuple[int, int, int] | None


class ScenarioWatcher:
    """Watches one file for a MockService; `report` receives one message per change."""

    def __init__(
        self,
        service: MockService,
        path: str | Path,
        report: Callable[[str], None],
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.service = service
        self.path = Path(path)
        self.report = report
        self.interval = interval
        self._seen = _signature(self.path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ScenarioWatcher:
        """Poll in a daemon thread until `stop()`."""
        self._thread = threading.Thread(target=self._run, name="vesanor-mock-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> bool:
        """Check once; reload if the file changed. True when something was reported."""
        now = _signature(self.path)
        if now == self._seen:
            return False
        self._seen = now
        current = self.service.scenario.name if self.service.scenario else None
        try:
            loaded = self.service.load_path(self.path)
        except ScenarioError as error:
            self.report(
                f"vesanor-mock: {self.path} changed but does not load; keeping the last good "
                f"scenario {current!r}:\n{error.render()}"
            )
        else:
            self.report(
                f"vesanor-mock: {self.path} changed: reloaded scenario {loaded.name!r} "
                "(all state reset)"
            )
        return True


def _signature(path: Path) -> Signature:
    """What tells a change: modification time, size and inode (None when unreadable)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
