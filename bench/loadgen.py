"""Fallback load generator when wrk is missing: worker processes, keep-alive sockets."""

from __future__ import annotations

import json
import multiprocessing
import re
import selectors
import socket
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

API = "/api/v1/replay/sessions"
MISSING = API + "/sess_0000000000000000"
PREPARED = re.compile(rb'"prepared_request_id":"([^"]+)"')
PENDING = re.compile(rb'"pending_call_id":"([^"]+)"')
PENDING_IN_ERROR = re.compile(rb'"(pc_[0-9a-f]+)"')
OUTPUTS = (b'{"verified":true}', b'{"status":"shipped","total":120}')
SCENARIOS = ("floor", "cycle", "get", "miss", "create")


def http_request(method: str, path: str, key: str, body: bytes | None = None) -> bytes:
    """One HTTP/1.1 keep-alive request as bytes."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {key}"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class Scenario:
    """What one connection sends next and how it judges each answer (mirrors load.lua)."""

    name: str
    key: str
    sid: str = "none"
    fence: int = 1
    create_body: bytes = b""
    unexpected: int = 0
    samples: list[str] = field(default_factory=list)
    step: int = 0
    prepared: str = ""
    todo: deque[tuple[str, bytes]] = field(default_factory=deque)

    def next_request(self) -> bytes:
        """The next request of this connection."""
        base = f"{API}/{self.sid}"
        if self.name == "floor":
            return http_request("POST", "/echo", self.key, b'{"fence_token":1}')
        if self.name == "get":
            return http_request("GET", base, self.key)
        if self.name == "miss":
            return http_request("GET", MISSING, self.key)
        if self.name == "create":
            return http_request("POST", API, self.key, self.create_body)
        if self.todo:
            pending_id, output = self.todo[0]
            body = (
                b'{"pending_call_id":"%s","fence_token":%d,"outcome":"success","output":%s,'
                b'"evidence":{"kind":"local_transaction","acknowledged":true}}'
                % (pending_id.encode(), self.fence, output)
            )
            return http_request("POST", base + "/receipts", self.key, body)
        if self.step == 1:
            body = (
                b'{"prepared_request_id":"%s","fence_token":%d,"response":{"tool_calls":['
                b'{"id":"c1","name":"verify_customer","arguments":{"customer_id":"cus_42"}},'
                b'{"id":"c2","name":"lookup_order","arguments":{"order_id":"ord_7"}}]},'
                b'"usage":{"input_tokens":120,"output_tokens":30}}'
                % (self.prepared.encode(), self.fence)
            )
            return http_request("POST", base + "/proposals", self.key, body)
        body = (
            b'{"fence_token":%d,"request":{"model":"bench-model",'
            b'"tools":["verify_customer","lookup_order","issue_refund"]}}' % self.fence
        )
        return http_request("POST", base + "/preflight", self.key, body)

    def on_response(self, status: int, body: bytes) -> None:
        """Judge an answer and move the cycle on."""
        if self.name == "cycle":
            self._cycle(status, body)
        elif status != {"create": 201, "miss": 404}.get(self.name, 200):
            self._unexpected(status, body)

    def _unexpected(self, status: int, body: bytes) -> None:
        self.unexpected += 1
        if len(self.samples) < 5:
            self.samples.append(f"{status} {body[:160].decode(errors='replace')}")

    def _cycle(self, status: int, body: bytes) -> None:
        if self.todo:
            self.todo.popleft()
            if status != 200:
                self._unexpected(status, body)
            return
        if self.step == 0:
            found = PREPARED.search(body)
            if status == 200 and found:
                self.prepared, self.step = found.group(1).decode(), 1
                return
            self._unexpected(status, body)
            self.todo.extend((m.decode(), b"null") for m in PENDING_IN_ERROR.findall(body))
            return
        self.step = 0
        ids = PENDING.findall(body) if status == 200 else []
        if len(ids) != 2:
            self._unexpected(status, body)
        self.todo.extend((m.decode(), out) for m, out in zip(ids, OUTPUTS, strict=False))


def parse_response(buffer: bytearray) -> tuple[int, bytes] | None:
    """Pop one complete response (status, body) off the buffer, or None if incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    total = end + 4 + length
    if len(buffer) < total:
        return None
    body = bytes(buffer[end + 4 : total])
    del buffer[:total]
    return status, body


@dataclass
class Job:
    """What one worker process runs."""

    scenario: str
    port: int
    key: str
    seconds: float | None
    per_connection: int
    sessions: list[tuple[str, int]]
    create_body: bytes


def _worker(job: Job, ready: Any, go: Any, pipe: Connection) -> None:
    """Drive this worker's connections until the deadline or the request count."""
    scenarios = [
        Scenario(job.scenario, job.key, sid, fence, job.create_body) for sid, fence in job.sessions
    ]
    selector = selectors.DefaultSelector()
    buffers: dict[int, bytearray] = {}
    sent_at: dict[int, int] = {}
    counts: dict[int, int] = {}
    socks: list[socket.socket] = []
    for index in range(len(scenarios)):
        sock = socket.create_connection(("127.0.0.1", job.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(sock)
        selector.register(sock, selectors.EVENT_READ, index)
        buffers[index], counts[index] = bytearray(), 0
    latencies = array("q")
    errors = 0
    ready.wait()
    go.wait()
    start = time.perf_counter()
    deadline = start + job.seconds if job.seconds else float("inf")
    for index, sock in enumerate(socks):
        sent_at[index] = time.perf_counter_ns()
        sock.sendall(scenarios[index].next_request())
    active = len(socks)
    while active and time.perf_counter() < deadline:
        for key, _ in selector.select(timeout=0.05):
            index = key.data
            sock = socks[index]
            chunk = sock.recv(262144)
            if not chunk:
                errors += 1
                selector.unregister(sock)
                active -= 1
                continue
            buffers[index] += chunk
            parsed = parse_response(buffers[index])
            if parsed is None:
                continue
            latencies.append(time.perf_counter_ns() - sent_at[index])
            scenarios[index].on_response(*parsed)
            counts[index] += 1
            if job.per_connection and counts[index] >= job.per_connection:
                selector.unregister(sock)
                active -= 1
                continue
            sent_at[index] = time.perf_counter_ns()
            sock.sendall(scenarios[index].next_request())
    elapsed = time.perf_counter() - start
    for sock in socks:
        sock.close()
    pipe.send(
        {
            "requests": len(latencies),
            "elapsed": elapsed,
            "latencies": latencies.tobytes(),
            "unexpected": sum(s.unexpected for s in scenarios),
            "samples": [text for s in scenarios for text in s.samples][:5],
            "errors": errors,
        }
    )
    pipe.close()


def run(
    scenario: str,
    port: int,
    *,
    key: str,
    seconds: float | None = None,
    count: int | None = None,
    sessions: list[tuple[str, int]] | None = None,
    create_body: bytes = b"",
    concurrency: int = 16,
    processes: int = 2,
) -> dict[str, Any]:
    """Run one load and answer the same figures as load.lua's BENCH_JSON line."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}")
    conns = list(sessions or [("none", 1)] * concurrency)[:concurrency]
    conns += [("none", 1)] * (concurrency - len(conns))
    per_connection = 0 if count is None else max(1, count // concurrency)
    if scenario == "cycle" and per_connection:
        per_connection -= per_connection % 4
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    go = context.Event()
    workers: list[tuple[Any, Connection]] = []
    for worker in range(processes):
        mine = conns[worker::processes]
        job = Job(scenario, port, key, seconds, per_connection, mine, create_body)
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(job, ready, go, sender), daemon=True)
        process.start()
        workers.append((process, receiver))
    ready.wait(timeout=30)
    go.set()
    results = [receiver.recv() for _, receiver in workers]
    for process, _ in workers:
        process.join(timeout=10)
    merged = array("q")
    for result in results:
        merged.frombytes(result["latencies"])
    ordered = sorted(merged)
    elapsed = max(result["elapsed"] for result in results)
    return {
        "requests": len(ordered),
        "duration_us": int(elapsed * 1e6),
        "read_errors": sum(result["errors"] for result in results),
        "connect_errors": 0,
        "write_errors": 0,
        "status_errors": 0,
        "timeouts": 0,
        "unexpected": sum(result["unexpected"] for result in results),
        "p50_us": _percentile(ordered, 50) // 1000,
        "p90_us": _percentile(ordered, 90) // 1000,
        "p99_us": _percentile(ordered, 99) // 1000,
        "max_us": (ordered[-1] if ordered else 0) // 1000,
        "samples": [text for result in results for text in result["samples"]][:5],
    }


def _percentile(ordered: list[int], q: float) -> int:
    """The q-th percentile (nearest rank) of sorted values; 0 when empty."""
    if not ordered:
        return 0
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))
    return ordered[rank]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("port", type=int)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--key", default="vsk_test_default")
    options = parser.parse_args()
    figures = run(options.scenario, options.port, key=options.key, seconds=options.seconds)
    print(json.dumps(figures))
