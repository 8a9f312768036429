"""Reload a scenario when it changes on disk: a cheap `stat` poll in a daemon thread.

Watched: the scenario file, the files it `extends`, and its contracts folders (each file
in them, and the folder itself for files added or removed). A change (modification time,
size or inode) loads the scenario again, replacing all state. A scenario that no longer
loads changes nothing: the last good one keeps serving, the report says so with every
problem, line-numbered, and `service.reload_error` holds it (health says `degraded`)
until a reload succeeds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import ScenarioError
from .http.app import MockService

DEFAULT_INTERVAL = 0.5

Signature = tuple[tuple[str, tuple[int, int, int] | None], ...]


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
        self._watched = self._paths()
        self._seen = _signature(self._watched)
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
            try:
                self.poll()
            except Exception as exc:  # never let the watcher die: report and keep watching
                self.service.reload_error = f"{self.path}: {type(exc).__name__}: {exc}"
                self.report(
                    f"vesanor-mock: {self.path} changed but could not be checked ({exc}); "
                    "keeping the last good scenario and watching on"
                )
                self._seen = _signature(self._watched)

    def poll(self) -> bool:
        """Check once; reload if the file changed. True when something was reported."""
        now = _signature(self._watched)
        if now == self._seen:
            return False
        current = self.service.scenario.name if self.service.scenario else None
        try:
            loaded = self.service.load_path(self.path)
        except ScenarioError as error:
            self.service.reload_error = error.render()
            self.service.changed()  # an open dashboard shows the banner now
            self.report(
                f"vesanor-mock: {self.path} changed but does not load; keeping the last good "
                f"scenario {current!r} (health: degraded):\n{error.render()}"
            )
        else:
            self.service.reload_error = None
            self.report(
                f"vesanor-mock: {self.path} changed: reloaded scenario {loaded.name!r} "
                "(all state reset)"
            )
        self._watched = self._paths()
        self._seen = _signature(self._watched)
        return True

    def _paths(self) -> list[Path]:
        """The scenario file, its bases and its contracts folders (as last loaded)."""
        scenario = self.service.scenario
        files = [Path(f) for f in scenario.files] if scenario is not None else []
        return list(dict.fromkeys([self.path, *files]))


def _signature(paths: list[Path]) -> Signature:
    """What tells a change: each path's (and a folder's files') modification time, size and
    inode, None when unreadable."""
    found: list[tuple[str, tuple[int, int, int] | None]] = []
    for path in paths:
        found.append((str(path), _stat(path)))
        if path.is_dir():
            try:
                inside = sorted(path.iterdir())
            except OSError:
                continue
            found += [(str(item), _stat(item)) for item in inside]
    return tuple(found)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino
