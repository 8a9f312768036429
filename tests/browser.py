"""A headless Chromium for the dashboard's tests and screenshots, or the reason there is none.

Playwright for Python drives the system's Chromium (Debian's `chromium` package); it never
downloads a browser. Where either is missing, `browser_problem()` says how to get it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOW = (
    "the dashboard's browser tests need Chromium and Playwright for Python: "
    "`apt-get install -y chromium` (or set VESANOR_MOCK_CHROMIUM to a Chromium binary) and "
    "`pip install -e '.[dev]'` (playwright); never `playwright install`"
)


def chromium_path() -> str | None:
    """The Chromium binary to drive: $VESANOR_MOCK_CHROMIUM, else a system one."""
    given = os.environ.get("VESANOR_MOCK_CHROMIUM")
    if given:
        return given if os.path.isfile(given) else None
    for path in CANDIDATES:
        if os.path.isfile(path):
            return path
    found = shutil.which("chromium")
    return found


def browser_problem() -> str | None:
    """None when a browser can be driven, else what is missing and how to get it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed; " + HOW
    if chromium_path() is None:
        return "no Chromium binary found; " + HOW
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 800) -> Iterator[Any]:
    """A persistent browser context on a fresh profile folder, closed on exit."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=chromium_path(),
            args=ARGS,
            headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            yield context
        finally:
            context.close()
