"""Screenshots of the dashboard's main views, for the README (`make screenshots`).

Starts a mock, drives the demo run the browser tests use (a governed cycle with a dropped
answer, a forced block, a workflow handoff and a write after a kill), opens the dashboard
in the system's headless Chromium at 1280x800 and writes PNGs under docs/img/.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import dashrun  # noqa: E402
from tests.browser import browser_problem, chromium  # noqa: E402

from vesanor_mock.server import MockServer  # noqa: E402

OUT = ROOT / "docs" / "img"


def main() -> int:
    problem = browser_problem()
    if problem is not None:
        print(f"screenshots: {problem}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with MockServer() as server, chromium(1280, 800) as context:
        dashrun.drive(server.url)
        page = context.new_page()
        page.goto(server.url + "/_mock/ui")
        page.wait_for_selector("[data-session='refund-1']")
        page.click("[data-session='refund-1']")
        page.wait_for_selector("#timeline .finding")
        shoot(page, "dashboard-sessions.png")
        page.click("#tab-journal")
        page.wait_for_selector("#journal-viewport .jrow[data-seq='7']")
        page.click("#journal-viewport .jrow[data-seq='7']")
        page.wait_for_selector("#bodies pre")
        shoot(page, "dashboard-journal.png")
        page.click("#tab-rules")
        page.wait_for_selector("#rules table")
        shoot(page, "dashboard-rules.png")
        page.click("#tab-coverage")
        page.wait_for_selector("#coverage .meter")
        shoot(page, "dashboard-coverage.png")
    return 0


def shoot(page: object, name: str) -> None:
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    page.screenshot(path=str(OUT / name))  # type: ignore[attr-defined]
    print(f"wrote docs/img/{name}")


if __name__ == "__main__":
    raise SystemExit(main())
