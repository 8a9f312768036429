"""What one open dashboard costs the API path (docs/dashboard.md, bench/RESULTS.md).

Starts `vesanor-mock serve` (fast stack, access log off), then alternates rounds of the
same fixed load (GET of one session over keep-alive connections, each request journaled)
with no page open and with one "page" open. The page is simulated by what app.js sends on
its Journal tab: it follows GET /_mock/stream and, for each change event (at most four a
second), reads /_mock/state, /_mock/health and the new journal entries with their digests
(`?since=SEQ&digest=true&bodies=false`), plus /_mock/findings every two seconds. The
figure that matters is the server's CPU time per API request (from /proc, so other
processes on a busy machine do not blur it); throughput is printed too.

    python bench/dashboard.py [--rounds 3] [--count 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen

KEY = "vsk_test_default"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Page:
    """The dashboard's requests on its Journal tab, in a thread, until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.reads = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        http = requests.Session()
        last_seq, last_findings = 0, 0.0
        with http.get(self.url + "/_mock/stream", stream=True, timeout=(5, None)) as stream:
            for line in stream.iter_lines():
                if self.stop.is_set():
                    return
                if not line.startswith(b"data:"):
                    continue
                change = json.loads(line[5:])
                http.get(self.url + "/_mock/state", timeout=30)
                http.get(self.url + "/_mock/health", timeout=30)
                query = {"since": str(last_seq), "digest": "true", "bodies": "false"}
                entries = http.get(self.url + "/_mock/journal", params=query, timeout=30).json()
                if entries["entries"]:
                    last_seq = entries["entries"][-1]["seq"]
                if time.monotonic() - last_findings >= 2:
                    http.get(self.url + "/_mock/findings", timeout=30)
                    last_findings = time.monotonic()
                self.reads += 1
                last_seq = max(last_seq, change["total"] - 1000)  # the page keeps its tail

    def close(self) -> None:
        self.stop.set()


def one_round(url: str, port: int, pid: int, count: int, sid: str) -> dict[str, float]:
    before = cpu_seconds(pid)
    started = time.perf_counter()
    result = loadgen.run(
        "get", port, key=KEY, count=count, sessions=[(sid, 1)] * 8, concurrency=8, processes=1
    )
    elapsed = time.perf_counter() - started
    used = cpu_seconds(pid) - before
    return {
        "requests": result["requests"],
        "cpu_us_per_request": used / max(1, result["requests"]) * 1e6,
        "requests_per_s": result["requests"] / elapsed,
        "p50_us": result["p50_us"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=20000)
    args = parser.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "vesanor_mock", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--no-reload", "--log-format", "off"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/_mock/health", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        created = requests.post(
            url + "/api/v1/replay/sessions",
            json={"session_id": "bench-1", "agent": "bench"},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=5,
        )
        created.raise_for_status()
        one_round(url, port, server.pid, args.count // 4, "bench-1")  # warm up
        rounds: dict[str, list[dict[str, float]]] = {"closed": [], "open": []}
        reads = 0
        for _ in range(args.rounds):
            rounds["closed"].append(one_round(url, port, server.pid, args.count, "bench-1"))
            page = Page(url)
            time.sleep(0.5)
            rounds["open"].append(one_round(url, port, server.pid, args.count, "bench-1"))
            page.close()
            reads += page.reads
        report(rounds, reads)
    finally:
        server.terminate()
        server.wait(10)
    return 0


def report(rounds: dict[str, list[dict[str, Any]]], reads: int) -> None:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds[name])

    closed, opened = median("closed", "cpu_us_per_request"), median("open", "cpu_us_per_request")
    print(f"{'page':<8} {'server CPU us/request':>22} {'requests/s':>11} {'p50 us':>7}")
    for name in ("closed", "open"):
        print(
            f"{name:<8} {median(name, 'cpu_us_per_request'):>22.1f} "
            f"{median(name, 'requests_per_s'):>11.0f} {median(name, 'p50_us'):>7.0f}"
        )
    print(f"one open page: {100 * (opened - closed) / closed:+.1f}% server CPU per API request")
    print(f"(medians of {len(rounds['open'])} rounds; the page refreshed {reads} times)")


if __name__ == "__main__":
    raise SystemExit(main())
