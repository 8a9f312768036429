"""Soak: 200k governed requests against one mock server process; memory stays flat and every
answer is valid.

The server runs in its own process (so its RSS is its own); one client sends the governed
cycle over a keep-alive connection in rounds, each like one test of a suite: reset the
world, then sessions that preflight, propose, receipt, label and read, 40 cycles each,
then are killed. Every answer is checked (status, X-Request-Id, JSON) and validated against
its schema with SchemaRegistry.response_errors. RSS is printed at the end of every round.

    python bench/soak.py            # 200,000 requests, 10 rounds (about three minutes)
    python bench/soak.py --smoke    # 2,000 requests, 2 rounds (a few seconds; CI runs it)

Exit status 1 when an answer is invalid or RSS grows more than --max-growth-mib between the
end of the first round and the end of the last.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from vesanor_mock.config import Settings
from vesanor_mock.schemas import SchemaRegistry
from vesanor_mock.server import MockServer

KEY = "vsk_test_default"
API = "/api/v1"
CYCLES_PER_SESSION = 40
CONTRACT: dict[str, Any] = {
    "schema_version": "1.0",
    "agent": "soak-bot",
    "phases": [{"name": "start", "initial": True}, {"name": "verified", "terminal": True}],
    "transitions": {"start": ["verified"], "verified": []},
    "tools": {
        "verify_customer": {
            "side_effect": "read",
            "evidence_class": "local_transaction",
            "commit_requirement": "acknowledged",
            "transitions": {"advances_to": "verified"},
        },
        "lookup_order": {
            "side_effect": "read",
            "evidence_class": "local_transaction",
            "commit_requirement": "none",
        },
    },
}


def serve(pipe: Connection) -> None:
    """The server process: a MockServer until the parent says stop."""
    with MockServer(Settings(port=0)) as server:
        pipe.send(server.port)
        pipe.recv()


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Client:
    """One keep-alive connection; counts requests and judges every answer."""

    port: int
    registry: SchemaRegistry
    sent: int = 0
    validated: int = 0
    invalid: int = 0
    samples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def call(
        self, endpoint: str, method: str, path: str, body: Any = None, status: int = 200
    ) -> dict[str, Any]:
        """One API request; an answer off its schema or with another status is invalid."""
        headers = {"Authorization": f"Bearer {KEY}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.http.request(method, API + path, body=data, headers=headers)
        response = self.http.getresponse()
        raw = response.read()
        self.sent += 1
        problems: list[str] = []
        if response.status != status:
            problems.append(f"status {response.status}, expected {status}")
        if not (response.getheader("X-Request-Id") or "").startswith("req_"):
            problems.append("no X-Request-Id")
        try:
            answer = json.loads(raw)
        except ValueError:
            answer, problems = {}, [*problems, "not JSON"]
        else:
            problems += self.registry.response_errors(endpoint, response.status, answer)
            self.validated += 1
        if problems:
            self.invalid += 1
            if len(self.samples) < 5:
                self.samples.append(f"{method} {path}: {problems[:3]} {raw[:300]!r}")
        return dict(answer) if isinstance(answer, dict) else {}

    def reset(self) -> None:
        """POST /_mock/reset, as a test harness does between tests."""
        self.http.request("POST", "/_mock/reset", body=b"", headers={"Content-Length": "0"})
        response = self.http.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"reset answered {response.status}")


def session_story(client: Client) -> None:
    """One session: 40 governed cycles, a label and a read every fifth, then a kill."""
    created = client.call(
        "create_session",
        "POST",
        "/replay/sessions",
        {"agent": "soak-bot", "contract": {"compiled_session": CONTRACT}},
        status=201,
    )
    sid = created["session"]["session_id"]
    fence, version = created["lease"]["fence_token"], 0
    base = f"/replay/sessions/{sid}"
    for cycle in range(CYCLES_PER_SESSION):
        prep = client.call(
            "preflight",
            "POST",
            base + "/preflight",
            {"fence_token": fence, "expected_state_version": version},
        )
        tool = "verify_customer" if cycle == 0 else "lookup_order"
        calls = [{"id": f"c{cycle}", "name": tool, "arguments": {"order": cycle}}]
        proposal = client.call(
            "proposals",
            "POST",
            base + "/proposals",
            {
                "prepared_request_id": prep.get("prepared_request_id", "?"),
                "fence_token": fence,
                "response": {"tool_calls": calls},
                "usage": {"cost_usd": 0.001},
            },
        )
        for judged in proposal.get("calls", []):
            if judged.get("pending_call_id"):
                receipt = client.call(
                    "receipts",
                    "POST",
                    base + "/receipts",
                    {
                        "pending_call_id": judged["pending_call_id"],
                        "fence_token": fence,
                        "outcome": "success",
                        "output": {"order": cycle, "status": "shipped"},
                        "evidence": {"kind": "local_transaction", "acknowledged": True},
                    },
                )
                version = receipt.get("state_version", version)
        if cycle % 5 == 0:
            client.call("labels", "POST", base + "/labels", {"key": "step", "value": cycle}, 201)
            client.call("get_session", "GET", base + "?include=pending")
    client.call("kill", "POST", base + "/kill", {"reason": "done"})


def run(total: int, rounds: int, max_growth_mib: float) -> int:
    """Start the server, send `total` requests in `rounds`, print RSS; 0 when all held."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=serve, args=(child,), daemon=True)
    process.start()
    client = Client(parent.recv(), SchemaRegistry.load())
    assert process.pid is not None
    started = time.perf_counter()
    print(f"soak: {total:,} requests in {rounds} rounds; server pid {process.pid}")
    print(f"  start: rss {rss_mib(process.pid):.1f} MiB")
    checkpoints: list[float] = []
    try:
        for round_ in range(1, rounds + 1):
            client.reset()
            while client.sent < total * round_ // rounds:
                session_story(client)
            rss = rss_mib(process.pid)
            checkpoints.append(rss)
            elapsed = time.perf_counter() - started
            print(
                f"  round {round_:>2}: {client.sent:>8,} requests, {elapsed:6.1f} s, "
                f"{client.sent / elapsed:6.0f} req/s, rss {rss:6.1f} MiB, invalid {client.invalid}"
            )
    finally:
        parent.send("stop")
        process.join(timeout=10)
    growth = checkpoints[-1] - checkpoints[0]
    print(
        f"soak: {client.sent:,} requests, {client.validated:,} answers validated, "
        f"{client.invalid} invalid; rss {checkpoints[0]:.1f} -> {checkpoints[-1]:.1f} MiB "
        f"(growth {growth:+.1f} MiB after round 1, max {max(checkpoints):.1f} MiB)"
    )
    for sample in client.samples:
        print("  invalid:", sample)
    return 0 if client.invalid == 0 and growth <= max_growth_mib else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run the soak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000, help="requests in all")
    parser.add_argument("--rounds", type=int, default=10, help="rounds (a reset before each)")
    parser.add_argument("--max-growth-mib", type=float, default=16.0, help="allowed RSS growth")
    parser.add_argument("--smoke", action="store_true", help="2,000 requests in 2 rounds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.requests, args.rounds = 2_000, 2
    return run(args.requests, args.rounds, args.max_growth_mib)


if __name__ == "__main__":
    sys.exit(main())
