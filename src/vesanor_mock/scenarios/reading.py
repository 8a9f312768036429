"""Reading scenario and contract files: regular files only, and never more than the limit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ScenarioError, ScenarioIssue

MAX_BYTES = 1024 * 1024
"""The largest scenario or contract file, in bytes."""


def read_bounded(where: str | Path, filename: str | None = None) -> bytes:
    """A scenario or contract file's bytes (PROTOCOL §8): a regular file only (a FIFO, a
    device or a folder is a ScenarioError, never a hang), read up to MAX_BYTES + 1 bytes
    and no further (a bigger file is refused, whatever its size claims to be)."""
    name = filename or str(where)
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ScenarioError(name, [ScenarioIssue(f"cannot read: {exc.strerror}")]) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            issue = ScenarioIssue("not a regular file (a FIFO, a device or a folder): refused")
            raise ScenarioError(name, [issue])
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ScenarioError(name, [ScenarioIssue(f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_BYTES:
        issue = ScenarioIssue(f"the file is larger than {MAX_BYTES} bytes: refused unread")
        raise ScenarioError(name, [issue])
    return data
