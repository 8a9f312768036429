"""What the client checks cost: the request path with and without them, and reading them.

    .venv/bin/python bench/checks.py [--cycles N] [--rounds R] [--entries E]

1. The request path: governed cycles (preflight, proposal, receipt, GET) sent straight to
   the ASGI app (no socket, so the difference is not lost in network noise), once with the
   checker and coverage watching the journal and once without, alternated over R rounds;
   the median per-request time of each and the overhead in percent.
2. Reading: a journal of E entries (misbehaving and well-behaved requests mixed), then the
   median time of GET /_mock/findings and GET /_mock/coverage's work (the view functions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from vesanor_mock.config import Settings
from vesanor_mock.http.app import MockService, create_app
from vesanor_mock.http.views import coverage_view, findings_view

KEY = b"Bearer vsk_test_default"
CONTRACT = {
    "schema_version": "1.0",
    "agent": "bench",
    "phases": [{"name": "start", "initial": True}, {"name": "done", "terminal": True}],
    "transitions": {"start": ["done"], "done": []},
    "tools": {
        "lookup": {
            "tool": "lookup",
            "side_effect": "read",
            "evidence_class": "local_transaction",
            "commit_requirement": "none",
        }
    },
}


class Driver:
    """Sends requests to an ASGI app in-process."""

    def __init__(self, service: MockService) -> None:
        self.service = service
        self.app = create_app(service=service)

    async def send(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = b"" if body is None else json.dumps(body).encode()
        path, _, query = path.partition("?")
        headers = [(b"authorization", KEY)]
        if body is not None:
            headers.append((b"content-type", b"application/json"))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8080),
            "scheme": "http",
            "root_path": "",
        }
        sent = False
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        data = b"".join(chunks)
        return status, json.loads(data) if data[:1] in (b"{", b"[") else None

    async def cycle(self, sid: str, misbehave: bool = False) -> int:
        """One governed cycle on session `sid`; answers the number of requests sent."""
        api = "/api/v1/replay/sessions/" + sid
        _, prep = await self.send("POST", api + "/preflight", {"fence_token": 1})
        calls = [{"id": "c1", "name": "lookup", "arguments": {}}]
        body = {
            "prepared_request_id": prep["prepared_request_id"],
            "fence_token": 1,
            "response": {"tool_calls": calls},
        }
        _, proposal = await self.send("POST", api + "/proposals", body)
        pending = proposal["calls"][0]["pending_call_id"]
        receipt = {"pending_call_id": pending, "fence_token": 1, "outcome": "success"}
        await self.send("POST", api + "/receipts", receipt)
        await self.send("GET", api)
        if misbehave:  # an invalid body and a reused prepared request
            await self.send("POST", api + "/preflight", {"fence_token": "x"})
            await self.send("POST", api + "/proposals", body)
            return 6
        return 4


def fresh(checks: bool) -> Driver:
    service = MockService(Settings(port=0))
    if not checks:
        service.world.journal.listeners.clear()
    return Driver(service)


async def request_path(cycles: int, rounds: int) -> dict[str, float]:
    """Median µs per request with and without the checks, alternating."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for checks in (True, False):
            driver = fresh(checks)
            for n in range(8):
                body = {"session_id": f"s-{n}", "agent": "bench"}
                await driver.send(
                    "POST",
                    "/api/v1/replay/sessions",
                    {**body, "contract": {"compiled_session": CONTRACT}},
                )
            sent = 0
            started = time.perf_counter()
            for i in range(cycles):
                sent += await driver.cycle(f"s-{i % 8}")
            times[checks].append((time.perf_counter() - started) / sent * 1e6)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    return {"with_us": on, "without_us": off, "overhead_pct": 100 * (on - off) / off}


async def reading(entries: int, repeat: int = 20) -> dict[str, float]:
    """Median ms to read findings and coverage after `entries` journaled requests."""
    driver = fresh(True)
    service = driver.service
    service.spec = service.spec.__class__(**{**service.spec.__dict__, "journal_limit": entries})
    service.reset()
    sent, n = 0, 0
    while sent < entries:
        sid = f"r-{n}"
        body = {"session_id": sid, "agent": "bench", "contract": {"compiled_session": CONTRACT}}
        await driver.send("POST", "/api/v1/replay/sessions", body)
        sent += 1 + await driver.cycle(sid, misbehave=n % 3 == 0)
        n += 1
    journal = len(service.world.journal)
    findings, coverage = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        found = findings_view(service.world)
        findings.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        coverage_view(service)
        coverage.append((time.perf_counter() - started) * 1000)
    return {
        "journal_entries": journal,
        "findings": len(found["findings"]),
        "findings_ms": statistics.median(findings),
        "coverage_ms": statistics.median(coverage),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    path = asyncio.run(request_path(args.cycles, args.rounds))
    print(
        f"request path: {path['with_us']:.1f} µs/request with the checks, "
        f"{path['without_us']:.1f} without: {path['overhead_pct']:+.1f}%"
    )
    read = asyncio.run(reading(args.entries))
    print(
        f"reading, {read['journal_entries']:.0f} journal entries, {read['findings']:.0f} "
        f"findings: findings {read['findings_ms']:.2f} ms, coverage {read['coverage_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
