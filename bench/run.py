"""Benchmark vesanor-mock against the floor (bare Starlette on the same uvicorn stack)."""

# `python bench/run.py` runs the full benchmark (about 5 minutes); `--smoke` runs every part
# briefly (seconds) and exits non-zero if anything broke. `--ref HEAD` measures a commit
# instead of the working tree. Figures go to stdout and bench/out/ (see bench/RESULTS.md).

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import loadgen

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
LUA = BENCH / "load.lua"
HOST = "127.0.0.1"
KEY = "vsk_test_default"
API = "/api/v1/replay/sessions"
CONCURRENCY = 16
STACKS = ("auto", "pure")  # httptools + uvloop (what an install gets), asyncio + h11 (fallback)
WIREMOCK_RPS = 3000.0  # WireMock serving one static stub on this machine kind (issue 6)
MIB = 1024 * 1024
PACKAGES = (
    "vesanor-mock",
    "starlette",
    "uvicorn",
    "httptools",
    "uvloop",
    "jsonschema",
    "fastjsonschema",
    "pytest",
)


@dataclass(frozen=True)
class Mode:
    """How long and how much each part of the benchmark runs."""

    name: str
    seconds: float  # each throughput window
    warmup: int  # requests before each measured window
    second_window: bool  # run the cycle again on the same (now older) sessions
    startup_runs: int
    reset_runs: int
    pytest_tests: int
    pytest_repeats: int
    latency_requests: int  # sequential keep-alive requests per stack
    get_steps: tuple[int, ...]  # cumulative GET-session requests at which RSS is read
    cycle_steps: tuple[int, ...]  # the same for the governed cycle on 16 long-lived sessions
    sessions: int  # resident sessions for memory per session
    journal_fill: int  # cheap requests that push older entries out of the journal
    quiet_wait: float  # longest wait for other processes to go quiet before a timed part
    quiet_budget: float  # longest such waiting in all


FULL = Mode(
    name="full",
    seconds=20.0,
    warmup=8_000,
    second_window=True,
    startup_runs=5,
    reset_runs=500,
    pytest_tests=2000,
    pytest_repeats=3,
    latency_requests=4_000,
    get_steps=(10_000, 100_000, 1_000_000),
    cycle_steps=(10_000, 100_000),
    sessions=10_000,
    journal_fill=12_000,
    quiet_wait=20.0,
    quiet_budget=120.0,
)
SMOKE = Mode(
    name="smoke",
    seconds=1.0,
    warmup=400,
    second_window=False,
    startup_runs=1,
    reset_runs=20,
    pytest_tests=20,
    pytest_repeats=1,
    latency_requests=200,
    get_steps=(2_000, 5_000),
    cycle_steps=(),
    sessions=500,
    journal_fill=0,
    quiet_wait=0.0,
    quiet_budget=0.0,
)


class BenchError(RuntimeError):
    """Something in the benchmark broke (not a missed target)."""


# -- HTTP helpers ----------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def answer_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """The status of one GET on a new connection, or None when nothing answers."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


class Client:
    """A keep-alive JSON client for set-up work (not for load)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; answers (status, parsed JSON body or None)."""
        headers = {"Authorization": f"Bearer {KEY}"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()  # the server closed an idle keep-alive connection: once more
                if attempt == 2:
                    raise
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def create_body() -> bytes:
    """The create-session body: the refund contract without session limits."""
    sys.path.insert(0, str(ROOT))
    from tests.contracts_examples import refund_contract

    contract = refund_contract(session_limits={})
    body = {"agent": "refund-bot", "contract": {"compiled_session": contract}}
    return json.dumps(body, separators=(",", ":")).encode()


def create_sessions(client: Client, body: bytes, count: int) -> list[tuple[str, int]]:
    """Create sessions; answer (session_id, fence_token) of each."""
    out: list[tuple[str, int]] = []
    for _ in range(count):
        status, answer = client.call("POST", API, body)
        if status != 201:
            raise BenchError(f"create session answered {status}: {answer}")
        out.append((answer["session"]["session_id"], answer["lease"]["fence_token"]))
    return out


def drain(client: Client, sessions: list[tuple[str, int]]) -> int:
    """Receipt every call a cut-short cycle left pending; answer how many."""
    done = 0
    for sid, fence in sessions:
        status, answer = client.call("GET", f"{API}/{sid}?include=pending")
        if status != 200:
            raise BenchError(f"GET session answered {status}: {answer}")
        for call in answer["session"].get("pending_calls", []):
            if call["status"] != "pending":
                continue
            receipt = {"pending_call_id": call["pending_call_id"], "fence_token": fence}
            receipt |= {"outcome": "success", "evidence": {"kind": "none"}}
            status, answer = client.call("POST", f"{API}/{sid}/receipts", receipt)
            if status != 200:
                raise BenchError(f"drain receipt answered {status}: {answer}")
            done += 1
    return done


# -- servers ---------------------------------------------------------------------------------


class Server:
    """One server in its own process on a free loopback port."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str]) -> None:
        self.name, self.argv, self.port, self.env = name, argv, port, env
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_s = 0.0
        self.probe = ""

    def start(self, timeout: float = 30.0) -> Server:
        """Start the process and wait until it answers; `ready_s` is process start to ready."""
        began = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=self.log, env=self.env, cwd=ROOT
        )
        deadline = began + timeout
        while True:
            probe = self._ready()
            if probe:
                self.ready_s, self.probe = time.perf_counter() - began, probe
                return self
            if self.process.poll() is not None or time.perf_counter() > deadline:
                raise BenchError(f"{self.name} did not start: {self.log_tail()}")
            time.sleep(0.001)

    def _ready(self) -> str:
        """The probe that answered, or '' while the server does not answer yet."""
        if self.name == "floor":
            return "GET /health 200" if answer_status(self.port, "/health") == 200 else ""
        health = answer_status(self.port, "/_mock/health")
        if health is None:
            return ""
        if health == 200:
            return "GET /_mock/health 200"
        status = answer_status(self.port, API + "/bench-probe")
        return f"GET /api/v1/... {status} (no /_mock/health: {health})" if status else ""

    def rss_mib(self) -> float:
        """Resident set size of the server process (Linux /proc), in MiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024 / MIB

    def check_alive(self) -> None:
        """Raise if the server process died."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise BenchError(f"{self.name} died (exit status {code}): {self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the server's stderr."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-1500:]

    def stop(self) -> None:
        """Terminate and wait; kill when it does not stop."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class Env:
    """How child processes are started: the environment and the mock's command."""

    vars: dict[str, str]
    mock_command: list[str]

    python: str = sys.executable

    def mock(self, stack: str = "auto") -> Server:
        """A `vesanor-mock serve` process with strict validation on the given stack."""
        port = free_port()
        argv = [*self.mock_command, "serve", "--host", HOST, "--port", str(port)]
        argv += ["--validation", "strict", "--http-stack", stack]
        return Server("mock", argv, port, self.vars)

    def floor(self, stack: str = "auto") -> Server:
        """The floor app (bench/floor_app.py) with the same uvicorn options and stack."""
        port = free_port()
        argv = [self.python, str(BENCH / "floor_app.py"), "--host", HOST, "--port", str(port)]
        return Server("floor", [*argv, "--http-stack", stack], port, self.vars)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """Start a server for the block and stop it afterwards."""
    try:
        yield server.start()
    finally:
        server.stop()


# -- load ------------------------------------------------------------------------------------


@dataclass
class Load:
    """The figures of one load run."""

    scenario: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    unexpected: int
    samples: list[str] = field(default_factory=list)
    server_cpu_pct: float = 0.0  # of one core, during the load
    other_cpu_pct: float = 0.0  # CPU used by processes other than server and load generator


class CpuMeter:
    """CPU seconds of the machine, the server, and this process with its children, from now."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.wall = time.perf_counter()
        self.readings = self._read()

    def _read(self) -> tuple[float, float, float]:
        """(machine busy, server, this process and its waited-for children), in seconds."""
        tick = os.sysconf("SC_CLK_TCK")
        busy = machine_busy_s()
        try:
            assert self.server.process is not None
            stat = Path(f"/proc/{self.server.process.pid}/stat").read_text()
            fields = stat.rpartition(")")[2].split()
            server = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            return (0.0, 0.0, 0.0)
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        mine = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        return busy, server, mine

    def since(self) -> tuple[float, float]:
        """(server CPU %, CPU % of everything else on the machine) since this meter began."""
        wall = time.perf_counter() - self.wall
        now = self._read()
        busy, server, mine = (
            after - before for after, before in zip(now, self.readings, strict=True)
        )
        if wall <= 0 or not now[0]:
            return 0.0, 0.0
        return round(server / wall * 100, 1), round(max(0.0, busy - server - mine) / wall * 100, 1)


class Loader:
    """Fixed-concurrency load over loopback from other processes: wrk, else loadgen.py."""

    def __init__(self, choice: str, body: bytes, work: Path) -> None:
        wrk = shutil.which("wrk")
        if choice == "wrk" and wrk is None:
            raise BenchError("wrk is not installed")
        self.wrk = wrk if choice in ("auto", "wrk") else None
        self.body = body
        self.body_file = work / "create_body.json"
        self.body_file.write_bytes(body)

    @property
    def name(self) -> str:
        """Which generator runs the load."""
        if self.wrk is None:
            return f"bench/loadgen.py ({CONCURRENCY} connections in 2 processes)"
        version = subprocess.run([self.wrk, "-v"], capture_output=True, text=True)
        first = (version.stdout or version.stderr).splitlines()[0].split("Copyright")[0]
        return f"{first.strip()} (-t{CONCURRENCY} -c{CONCURRENCY}, bench/load.lua)"

    def run(
        self,
        scenario: str,
        port: int,
        *,
        seconds: float | None = None,
        count: int | None = None,
        sessions: list[tuple[str, int]] | None = None,
    ) -> Load:
        """Run one load for `seconds` or until about `count` requests; check every answer."""
        if self.wrk is None:
            raw = loadgen.run(
                scenario,
                port,
                key=KEY,
                seconds=seconds,
                count=count,
                sessions=sessions,
                create_body=self.body,
                concurrency=CONCURRENCY,
            )
        else:
            raw = self._wrk(scenario, port, seconds, count, sessions)
        elapsed = raw["duration_us"] / 1e6
        socket_errors = ("connect_errors", "read_errors", "write_errors", "timeouts")
        return Load(
            scenario=scenario,
            requests=raw["requests"],
            seconds=round(elapsed, 3),
            rps=round(raw["requests"] / elapsed, 1) if elapsed else 0.0,
            p50_ms=raw["p50_us"] / 1000,
            p90_ms=raw["p90_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            max_ms=raw["max_us"] / 1000,
            errors=sum(raw[key] for key in socket_errors),
            unexpected=raw["unexpected"],
            samples=raw.get("samples", []),
        )

    def _wrk(
        self,
        scenario: str,
        port: int,
        seconds: float | None,
        count: int | None,
        sessions: list[tuple[str, int]] | None,
    ) -> dict[str, Any]:
        assert self.wrk is not None
        per_thread = 0
        if count is not None:
            per_thread = max(1, count // CONCURRENCY)
            if scenario == "cycle":
                per_thread = max(4, per_thread - per_thread % 4)  # end on a whole cycle
        env = {
            **os.environ,
            "BENCH_SCENARIO": scenario,
            "BENCH_SESSIONS": ",".join(f"{sid}:{fence}" for sid, fence in sessions or []),
            "BENCH_KEY": KEY,
            "BENCH_BODY_FILE": str(self.body_file),
            "BENCH_LIMIT": str(per_thread),
        }
        duration = f"{max(1, round(seconds))}s" if seconds is not None else "3600s"
        argv = [self.wrk, f"-t{CONCURRENCY}", f"-c{CONCURRENCY}", f"-d{duration}"]
        argv += ["--timeout", "30s", "--latency", "-s", str(LUA), f"http://{HOST}:{port}"]
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        watchdog = threading.Timer(
            (seconds or 0) + (count or 0) / 300 + 60, process.send_signal, (signal.SIGINT,)
        )
        watchdog.start()
        lines: list[str] = []
        finished = 0
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "DONE":
                finished += 1
                if finished == CONCURRENCY:
                    process.send_signal(signal.SIGINT)
                continue
            lines.append(line)
        process.wait()
        watchdog.cancel()
        text = "".join(lines)
        found = [line for line in lines if line.startswith("BENCH_JSON ")]
        if not found:
            raise BenchError(f"wrk gave no figures:\n{text[-1500:]}")
        raw: dict[str, Any] = json.loads(found[0].removeprefix("BENCH_JSON "))
        samples = text.partition("BENCH_SAMPLES_BEGIN\n")[2].partition("BENCH_SAMPLES_END")[0]
        raw["samples"] = [line for line in samples.splitlines() if line][:5]
        return raw


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot, all cores (Linux /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def wait_quiet(longest: float, threshold: float = 0.15) -> float:
    """Wait until the machine is idle (under `threshold` of a core busy); answer the wait."""
    began = time.perf_counter()
    while time.perf_counter() - began < longest:
        before = machine_busy_s()
        time.sleep(0.5)
        if machine_busy_s() - before < threshold * 0.5:
            break
    return time.perf_counter() - began


def checked(load: Load, problems: list[str], what: str) -> Load:
    """Record a problem when a load met errors, unexpected answers or did nothing."""
    if load.requests == 0 or load.errors or load.unexpected:
        problems.append(
            f"{what}: {load.requests} requests, {load.errors} socket errors, "
            f"{load.unexpected} unexpected answers {load.samples[:2]}"
        )
    return load


def sequential(
    port: int, scenario: str, count: int, session: tuple[str, int] | None, problems: list[str]
) -> dict[str, Any]:
    """`count` requests one after the other on one kept-alive connection: p50/p99/max."""
    sid, fence = session or ("none", 1)
    script = loadgen.Scenario(scenario, KEY, sid, fence)
    took: list[float] = []
    buffer = bytearray()
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            began = time.perf_counter_ns()
            sock.sendall(script.next_request())
            parsed = loadgen.parse_response(buffer)
            while parsed is None:
                chunk = sock.recv(262144)
                if not chunk:
                    raise BenchError(f"{scenario}: the server closed the connection")
                buffer += chunk
                parsed = loadgen.parse_response(buffer)
            took.append((time.perf_counter_ns() - began) / 1e6)
            script.on_response(*parsed)
    if script.unexpected:
        problems.append(f"latency {scenario}: {script.unexpected} unexpected {script.samples}")
    ordered = sorted(took)
    return {
        "requests": count,
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[max(0, round(0.99 * count) - 1)], 3),
        "max_ms": round(ordered[-1], 3),
    }


# -- the parts of the benchmark --------------------------------------------------------------


@dataclass
class Bench:
    """One benchmark run: its mode, its load generator, what it found."""

    mode: Mode
    env: Env
    loader: Loader
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    def quiet(self) -> None:
        """Before a timed part: wait (bounded) until other processes leave the CPU alone."""
        spent = self.results.get("quiet_wait_s", 0.0)
        longest = min(self.mode.quiet_wait, self.mode.quiet_budget - spent)
        if longest > 0:
            self.results["quiet_wait_s"] = round(spent + wait_quiet(longest), 1)

    def load(self, what: str, scenario: str, server: Server, **kwargs: Any) -> Load:
        """Run a load against a server; check it, the server, and who else used the CPU."""
        before = CpuMeter(server)
        load = checked(self.loader.run(scenario, server.port, **kwargs), self.problems, what)
        server.check_alive()
        load.server_cpu_pct, load.other_cpu_pct = before.since()
        return load

    def throughput(self) -> None:
        """On each stack: (a) the floor, (b) the governed cycle, (c) create and GET session."""
        self.results["throughput"] = {}
        for stack in STACKS:
            self.results["throughput"][stack] = {}
            self._throughput(stack)

    def _throughput(self, stack: str) -> None:
        mode = self.mode
        with running(self.env.floor(stack)) as floor:
            self.load("floor warm-up", "floor", floor, count=mode.warmup)
            self.quiet()
            load = self.load(f"floor {stack}", "floor", floor, seconds=mode.seconds)
            self._row(stack, "floor", load, floor)
        with running(self.env.mock(stack)) as mock:
            client = Client(mock.port)
            warm = create_sessions(client, self.loader.body, CONCURRENCY)
            self.load("cycle warm-up", "cycle", mock, count=mode.warmup, sessions=warm)
            drain(client, warm)
            sessions = create_sessions(client, self.loader.body, CONCURRENCY)
            second = mode.second_window and stack == "auto"
            windows = ["cycle", "cycle_2nd_window"] if second else ["cycle"]
            for name in windows:
                drain(client, sessions)
                self.quiet()
                load = self.load(
                    f"{name} {stack}", "cycle", mock, seconds=mode.seconds, sessions=sessions
                )
                self._row(stack, name, load, mock)
            client.close()
        with running(self.env.mock(stack)) as mock:
            client = Client(mock.port)
            sessions = create_sessions(client, self.loader.body, CONCURRENCY)
            client.close()
            self.load("get warm-up", "get", mock, count=mode.warmup, sessions=sessions)
            self.quiet()
            load = self.load(
                f"GET session {stack}", "get", mock, seconds=mode.seconds, sessions=sessions
            )
            self._row(stack, "get_session", load, mock)
        with running(self.env.mock(stack)) as mock:
            self.load("create warm-up", "create", mock, count=mode.warmup)
            self.quiet()
            load = self.load(f"create session {stack}", "create", mock, seconds=mode.seconds)
            self._row(stack, "create_session", load, mock)

    def latency(self) -> None:
        """One client, one kept-alive connection, sequential requests: what an SDK sees.

        On each stack: the floor's echo, the governed cycle on one session, and GET session;
        p50/p99/max per request. A Nagle stall (~40 ms per answer) shows here first.
        """
        count = self.mode.latency_requests
        out: dict[str, Any] = {}
        self.results["latency"] = out
        for stack in STACKS:
            rows: dict[str, Any] = {}
            out[stack] = rows
            with running(self.env.floor(stack)) as floor:
                self.quiet()
                rows["floor"] = sequential(floor.port, "floor", count, None, self.problems)
            with running(self.env.mock(stack)) as mock:
                client = Client(mock.port)
                session = create_sessions(client, self.loader.body, 1)[0]
                client.close()
                self.quiet()
                rows["cycle"] = sequential(mock.port, "cycle", count, session, self.problems)
                rows["get_session"] = sequential(mock.port, "get", count, session, self.problems)
                mock.check_alive()
        for name in ("floor", "cycle", "get_session"):
            auto, pure = out["auto"][name]["p50_ms"], out["pure"][name]["p50_ms"]
            out[f"{name}_p50_pure_over_auto"] = round(pure / auto, 2) if auto else None

    def _row(self, stack: str, name: str, load: Load, server: Server) -> None:
        """Record one throughput row with its ratios to the floor (same stack) and RSS."""
        table = self.results["throughput"][stack]
        row = asdict(load)
        floor = table.get("floor", row)
        row["rps_ratio_to_floor"] = round(load.rps / floor["rps"], 3)
        row["p99_ratio_to_floor"] = round(load.p99_ms / floor["p99_ms"], 2)
        row["rss_after_mib"] = round(server.rss_mib(), 1)
        if name.startswith("cycle"):
            row["cycles_per_s"] = round(load.rps / 4, 1)
        table[name] = row

    def startup(self) -> None:
        """Process start of `vesanor-mock serve` to ready, and `MockServer.start()`."""
        runs: list[float] = []
        probe = ""
        with running(self.env.mock()):
            pass  # once untimed: bytecode caches and the page cache are warm for the runs
        for _ in range(self.mode.startup_runs):
            self.quiet()
            with running(self.env.mock()) as mock:
                runs.append(mock.ready_s)
                probe = mock.probe
        python = self.env.python
        interpreter = min(timed([python, "-c", "pass"], self.env.vars) for _ in range(3))
        snippet = (
            "import time; t = time.perf_counter(); import vesanor_mock.cli; "
            "print(time.perf_counter() - t)"
        )
        imports = min(float(output([python, "-c", snippet], self.env.vars)) for _ in range(3))
        in_process = json.loads(output([python, "-c", MOCKSERVER_SNIPPET], self.env.vars))
        self.results["startup"] = {
            "serve_to_ready_s": {
                "median": round(statistics.median(runs), 4),
                "max": round(max(runs), 4),
                "runs": [round(r, 4) for r in runs],
                "probe": probe,
            },
            "python_start_s": round(interpreter, 4),
            "import_vesanor_mock_cli_s": round(imports, 4),
            "mockserver": in_process,
        }

    def reset(self) -> None:
        """POST /_mock/reset over HTTP on a keep-alive connection, after one session each."""
        with running(self.env.mock()) as mock:
            client = Client(mock.port)
            status, answer = client.call("POST", "/_mock/reset")
            if status in (404, 405):
                self.notes.append(f"reset skipped: POST /_mock/reset answered {status}")
                self.results["reset"] = {"skipped": f"POST /_mock/reset answered {status}"}
                return
            if status >= 300:
                raise BenchError(f"POST /_mock/reset answered {status}: {answer}")
            times: list[float] = []
            for _ in range(self.mode.reset_runs):
                create_sessions(client, self.loader.body, 1)
                began = time.perf_counter()
                status, answer = client.call("POST", "/_mock/reset")
                times.append((time.perf_counter() - began) * 1000)
                if status >= 300:
                    raise BenchError(f"POST /_mock/reset answered {status}: {answer}")
            client.close()
        ordered = sorted(times)
        self.results["reset"] = {
            "runs": len(times),
            "p50_ms": round(statistics.median(ordered), 3),
            "p99_ms": round(ordered[max(0, round(0.99 * len(ordered)) - 1)], 3),
            "mean_ms": round(statistics.fmean(ordered), 3),
        }

    def pytest_overhead(self) -> None:
        """Per-test cost of the `vesanor_mock` fixture: N fixture tests against N bare tests."""
        n = self.mode.pytest_tests
        with tempfile.TemporaryDirectory(prefix="vesanor-bench-pytest-") as work:
            folder = Path(work)
            (folder / "pytest.ini").write_text("[pytest]\n")
            for name, count in (("with", n), ("without", n), ("with_one", 1), ("without_one", 1)):
                argument = "vesanor_mock" if name in ("with", "with_one") else ""
                check = "assert vesanor_mock.url" if argument else "assert True"
                tests = [f"def test_{i}({argument}):\n    {check}\n" for i in range(count)]
                (folder / f"test_{name}.py").write_text("\n\n".join(tests))
            seconds: dict[str, float] = {}
            names = ("with", "without") if self.mode.name == "smoke" else None
            for name in names or ("with", "without", "with_one", "without_one"):
                argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                argv += ["-p", "no:randomly", f"test_{name}.py"]
                best = float("inf")
                self.quiet()
                for _ in range(self.mode.pytest_repeats):
                    began = time.perf_counter()
                    done = subprocess.run(
                        argv, cwd=folder, env=self.env.vars, capture_output=True, text=True
                    )
                    best = min(best, time.perf_counter() - began)
                    if done.returncode != 0:
                        raise BenchError(f"pytest {name} failed:\n{done.stdout[-1500:]}")
                seconds[name] = round(best, 4)
        result: dict[str, Any] = {"tests": n, "wall_s": seconds}
        result["per_test_ms"] = round((seconds["with"] - seconds["without"]) / n * 1000, 4)
        if "with_one" in seconds:
            fixed = seconds["with_one"] - seconds["without_one"]
            marginal = (seconds["with"] - seconds["without"] - fixed) / (n - 1)
            result["fixed_cost_ms"] = round(fixed * 1000, 2)
            result["marginal_per_test_ms"] = round(marginal * 1000, 4)
        self.results["pytest_fixture"] = result

    def memory(self) -> None:
        """RSS after 10k, 100k (and 1M) requests; memory per resident session."""
        mode = self.mode
        out: dict[str, Any] = {}
        self.results["memory"] = out
        for scenario, steps in (("get", mode.get_steps), ("cycle", mode.cycle_steps)):
            if not steps:
                continue
            with running(self.env.mock()) as mock:
                client = Client(mock.port)
                sessions = create_sessions(client, self.loader.body, CONCURRENCY)
                client.close()
                series: dict[str, Any] = {"idle_mib": round(mock.rss_mib(), 1)}
                out[scenario] = series
                sent = 0
                for step in steps:
                    load = self.load(
                        f"memory {scenario} to {step}",
                        scenario,
                        mock,
                        count=step - sent,
                        sessions=sessions,
                    )
                    sent += load.requests
                    series[str(step)] = {"requests": sent, "rss_mib": round(mock.rss_mib(), 1)}
                    series[str(step)]["rps"] = load.rps
            for before, after in itertools.pairwise(steps):
                ratio = series[str(after)]["rss_mib"] / series[str(before)]["rss_mib"]
                series[f"rss_{after}_over_{before}"] = round(ratio, 3)
        out["sessions"] = self._sessions()

    def _sessions(self) -> dict[str, Any]:
        """RSS per resident session (refund contract, no limits), and reset after them."""
        # The journal is filled with cheap 404s first. After the first batch it holds the
        # batch's create requests, so that figure includes them; a second, equal batch pushes
        # as many entries out as it adds, so its delta is the sessions alone.
        mode = self.mode
        with running(self.env.mock()) as mock:
            client = Client(mock.port)
            create_sessions(client, self.loader.body, 100)  # warm the create path
            if mode.journal_fill:
                self.load("journal fill", "miss", mock, count=mode.journal_fill)
            before = mock.rss_mib()
            first = self.load("create sessions", "create", mock, count=mode.sessions).requests
            middle = mock.rss_mib()
            second = self.load("more sessions", "create", mock, count=mode.sessions).requests
            after = mock.rss_mib()
            result: dict[str, Any] = {
                "sessions": first,
                "rss_before_mib": round(before, 1),
                "rss_after_first_mib": round(middle, 1),
                "rss_after_second_mib": round(after, 1),
                "kib_per_session": round((middle - before) * 1024 / first, 2),
                "kib_per_session_without_journal": round((after - middle) * 1024 / second, 2),
            }
            began = time.perf_counter()
            status, _ = client.call("POST", "/_mock/reset")
            if status < 300:
                result["reset_ms"] = round((time.perf_counter() - began) * 1000, 3)
                result["reset_sessions"] = first + second + 100
                result["rss_after_reset_mib"] = round(mock.rss_mib(), 1)
            client.close()
        return result


MOCKSERVER_SNIPPET = """
import http.client, json, time
began = time.perf_counter()
from vesanor_mock.server import MockServer
imported = time.perf_counter() - began
def one():
    a = time.perf_counter()
    server = MockServer()
    b = time.perf_counter()
    server.start()
    c = time.perf_counter()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/api/v1/replay/sessions/x")
    conn.getresponse().read()
    d = time.perf_counter()
    server.stop()
    e = time.perf_counter()
    r = lambda x: round(x, 4)
    return {"construct_s": r(b - a), "start_s": r(c - b), "first_answer_s": r(d - c),
            "stop_s": r(e - d)}
print(json.dumps({"import_s": round(imported, 4), "cold": one(), "warm": one()}))
"""


def stack_of(python: str, stack: str, env: dict[str, str]) -> str:
    """What `--http-stack STACK` runs on with that python, e.g. "httptools + uvloop"."""
    snippet = (
        "from vesanor_mock.server import uvicorn_config as c; "
        f"x = c(None, 1.0, {stack!r}); print(x.http, '+', x.loop)"
    )
    try:
        return output([python, "-c", snippet], env)
    except BenchError as error:
        return f"unknown ({error})"


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Wall time of a command."""
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def output(argv: list[str], env: dict[str, str]) -> str:
    """The stdout of a command that must succeed."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"{argv[:3]} failed: {done.stderr[-1500:]}")
    return done.stdout.strip()


# -- targets, machine, report ----------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 6 with its value, met or not, and the gap."""
    out: list[dict[str, Any]] = []

    def add(name: str, goal: str, value: float | None, limit: float, higher: bool) -> None:
        if value is None:
            out.append({"target": name, "goal": goal, "value": None, "met": None, "gap": "n/a"})
            return
        met = value >= limit if higher else value <= limit
        gap = "" if met else f"{value / limit:.2f} x the {'target' if higher else 'limit'}"
        out.append({"target": name, "goal": goal, "value": value, "met": met, "gap": gap})

    for stack in STACKS:
        table = results.get("throughput", {}).get(stack, {})
        cycle, floor = table.get("cycle"), table.get("floor")
        if cycle and floor:
            add(f"{stack}: cycle rps / floor rps", ">= 0.6", cycle["rps_ratio_to_floor"], 0.6, True)
            add(
                f"{stack}: cycle p99 / floor p99", "<= 2.0", cycle["p99_ratio_to_floor"], 2.0, False
            )
            if stack == "auto":
                goal = f"> {WIREMOCK_RPS:g}"
                add("auto: cycle rps vs WireMock stub", goal, cycle["rps"], WIREMOCK_RPS, True)
    latency = results.get("latency", {})
    if "cycle_p50_pure_over_auto" in latency:
        ratio = latency["cycle_p50_pure_over_auto"]
        add("keep-alive cycle p50 pure / auto", "<= 2.0", ratio, 2.0, False)
    ready = results.get("startup", {}).get("serve_to_ready_s", {}).get("median")
    add("startup to ready (s)", "< 0.5", ready, 0.5, False)
    reset = results.get("reset", {}).get("p50_ms")
    add("reset over HTTP p50 (ms)", "< 2", reset, 2.0, False)
    get = results.get("memory", {}).get("get", {})
    add("RSS(1M) / RSS(100k), GET", "<= 1.10", get.get("rss_1000000_over_100000"), 1.10, False)
    return out


def machine(loader: Loader, source: str) -> dict[str, Any]:
    """What the figures were measured on."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "load_generator": loader.name,
        "mock_source": source,
    }


def git(*args: str) -> str:
    """A git command's output in the repository, or '' when git is unavailable."""
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def plain_install(work: Path) -> Path:
    """A wheel of this tree pip-installed into a fresh venv, no extras: what users get.

    Answers the venv's python. The floor runs on that python too, so both use the stack
    the install brought.
    """
    dist, where = work / "dist", work / "plain-venv"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist)]
    subprocess.run([*build, str(ROOT)], check=True, capture_output=True)
    wheel = next(dist.glob("vesanor_mock-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True)
    python = where / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*install, str(wheel)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"pip install of the wheel failed: {done.stderr[-1500:]}")
    return python


def export(ref: str, into: Path) -> str:
    """Export src/, schemas/ and fixtures/ of a commit into a folder; answer the commit."""
    commit = git("rev-parse", "--verify", ref + "^{commit}")
    if not commit:
        raise BenchError(f"unknown git ref {ref!r}")
    archive = subprocess.run(
        ["git", "archive", commit, "src", "schemas", "fixtures"], cwd=ROOT, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def row(name: str, load: dict[str, Any]) -> str:
    """One line of the throughput table."""
    return (
        f"  {name:<22}{load['rps']:>10,.0f}{load['p50_ms']:>9.2f}{load['p99_ms']:>9.2f}"
        f"{load['rps_ratio_to_floor']:>9.3f}{load['p99_ratio_to_floor']:>9.2f}"
        f"{load['server_cpu_pct']:>8.0f}%{load['other_cpu_pct']:>6.0f}%"
    )


def report(results: dict[str, Any], goals: list[dict[str, Any]]) -> str:
    """The human-readable summary."""
    lines = [""]
    for stack, table in results.get("throughput", {}).items():
        lines.append(
            f"Throughput at concurrency {CONCURRENCY} (loopback), stack {stack} "
            f"({'httptools + uvloop' if stack == 'auto' else 'asyncio + h11'}; ratios to its floor)"
        )
        lines.append(
            f"  {'':<22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'x floor':>9}{'p99 x':>9}"
            f"{'srv cpu':>9}{'other':>7}"
        )
        lines += [row(name, load) for name, load in table.items()]
    latency = results.get("latency")
    if latency:
        lines.append("Keep-alive latency, one client, sequential (p50 / p99 / max ms)")
        for stack in STACKS:
            parts = [
                f"{name} {one['p50_ms']:.3f} / {one['p99_ms']:.2f} / {one['max_ms']:.1f}"
                for name, one in latency[stack].items()
            ]
            lines.append(f"  {stack:<5} " + "; ".join(parts))
        ratios = [
            f"{k.removesuffix('_p50_pure_over_auto')} {v}"
            for k, v in latency.items()
            if k.endswith("_pure_over_auto")
        ]
        lines.append("  p50 pure / auto: " + ", ".join(ratios))
    startup = results.get("startup")
    if startup:
        ready, server = startup["serve_to_ready_s"], startup["mockserver"]
        lines += [
            "",
            f"Startup: serve to ready {ready['median'] * 1000:.0f} ms median "
            f"(max {ready['max'] * 1000:.0f} ms; probe {ready['probe']}); python alone "
            f"{startup['python_start_s'] * 1000:.0f} ms, import vesanor_mock.cli "
            f"{startup['import_vesanor_mock_cli_s'] * 1000:.0f} ms",
            f"  MockServer: import {server['import_s'] * 1000:.0f} ms; cold construct "
            f"{server['cold']['construct_s'] * 1000:.1f} ms + start "
            f"{server['cold']['start_s'] * 1000:.1f} ms; warm construct "
            f"{server['warm']['construct_s'] * 1000:.1f} ms + start "
            f"{server['warm']['start_s'] * 1000:.1f} ms; "
            f"stop {server['warm']['stop_s'] * 1000:.0f} ms",
        ]
    reset = results.get("reset")
    if reset:
        text = reset.get("skipped") or (
            f"p50 {reset['p50_ms']:.3f} ms, p99 {reset['p99_ms']:.3f} ms over {reset['runs']} runs"
        )
        lines.append(f"Reset over HTTP: {text}")
    fixture = results.get("pytest_fixture")
    if fixture:
        text = f"{fixture['per_test_ms']:.3f} ms per test (difference / {fixture['tests']})"
        if "marginal_per_test_ms" in fixture:
            text += (
                f"; marginal {fixture['marginal_per_test_ms']:.3f} ms per test, fixed "
                f"{fixture['fixed_cost_ms']:.0f} ms per run"
            )
        lines.append(f"pytest fixture: {text}")
    memory = results.get("memory", {})
    for scenario in ("get", "cycle"):
        series = memory.get(scenario)
        if series:
            steps = [k for k in series if k.isdigit()]
            parts = [f"{int(k):,}: {series[k]['rss_mib']:.1f}" for k in steps]
            ratios = [f"{k} {v}" for k, v in series.items() if k.startswith("rss_")]
            lines.append(
                f"RSS MiB ({scenario}): idle {series['idle_mib']:.1f}, "
                + ", ".join(parts)
                + (f"; {', '.join(ratios)}" if ratios else "")
            )
    sessions = memory.get("sessions")
    if sessions:
        lines.append(
            f"Memory per resident session: {sessions['kib_per_session']:.2f} KiB at "
            f"{sessions['sessions']:,} sessions with their journal entries, "
            f"{sessions['kib_per_session_without_journal']:.2f} KiB without"
            + (
                f"; reset after {sessions['reset_sessions']:,} sessions "
                f"{sessions['reset_ms']:.1f} ms"
                if "reset_ms" in sessions
                else ""
            )
        )
    lines += ["", "Targets (issues 6 and 11)"]
    for goal in goals:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        value = "-" if goal["value"] is None else f"{goal['value']:g}"
        gap = f"  ({goal['gap']})" if goal["gap"] and goal["met"] is False else ""
        lines.append(f"  {goal['target']:<30}{goal['goal']:>9}{value:>10}  {verdict}{gap}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when any part broke (missed targets do not fail)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="every part briefly, for CI")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--ref", help="benchmark this git commit of src/ instead of the tree")
    parser.add_argument(
        "--plain-install",
        action="store_true",
        help="serve from a wheel of this tree pip-installed into a fresh venv (no extras)",
    )
    parser.add_argument("--seconds", type=float, help="override each throughput window")
    parser.add_argument("--only", nargs="*", choices=PARTS, help="run only these parts")
    options = parser.parse_args(argv)
    if options.plain_install and options.ref:
        parser.error("--plain-install builds the working tree: it does not take --ref")
    mode = SMOKE if options.smoke else FULL
    if options.seconds:
        mode = Mode(**{**asdict(mode), "seconds": options.seconds})
    began = time.perf_counter()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vesanor-bench-") as work:
        env_vars = dict(os.environ)
        if options.ref:
            commit = export(options.ref, Path(work))
            env_vars["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(Path(work) / "src"), env_vars.get("PYTHONPATH")) if p
            )
            source = f"git {commit[:12]} (--ref {options.ref})"
        else:
            dirty = len(git("status", "--porcelain", "--", "src").splitlines())
            source = f"working tree at {git('rev-parse', '--short=12', 'HEAD')}" + (
                f" with {dirty} changed files under src/" if dirty else ""
            )
        python = sys.executable
        if options.plain_install:
            print("building a wheel and installing it into a fresh venv ...", flush=True)
            python = str(plain_install(Path(work)))
            source += ", pip-installed from a wheel into a fresh venv"
        script = Path(python).parent / "vesanor-mock"
        command = [str(script)] if script.exists() else [python, "-m", "vesanor_mock"]
        loader = Loader(options.generator, create_body(), Path(work))
        bench = Bench(mode, Env(env_vars, command, python), loader)
        print(f"vesanor-mock benchmark ({mode.name}); load: {loader.name}; mock: {source}")
        for part in options.only or PARTS:
            step = time.perf_counter()
            print(f"- {part} ...", end=" ", flush=True)
            try:
                PARTS[part](bench)
                print(f"{time.perf_counter() - step:.1f} s", flush=True)
            except Exception as exc:
                print("FAILED", flush=True)
                detail = traceback.format_exc() if not isinstance(exc, BenchError) else ""
                bench.problems.append(f"{part}: {exc}\n{detail}".strip())
        goals = targets(bench.results)
        document = {
            "mode": mode.name,
            "stacks": {stack: stack_of(python, stack, env_vars) for stack in STACKS},
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "elapsed_s": round(time.perf_counter() - began, 1),
            "loadavg_at_start": load_at_start,
            "machine": machine(loader, source),
            "results": bench.results,
            "targets": goals,
            "notes": bench.notes,
            "problems": bench.problems,
        }
    OUT.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = OUT / f"bench-{mode.name}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    (OUT / f"latest-{mode.name}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(", ".join(f"stack {k}: {v}" for k, v in document["stacks"].items()))
    print(report(bench.results, goals))
    for note in bench.notes:
        print(f"note: {note}")
    print(f"\nwritten {path.relative_to(ROOT)} in {document['elapsed_s']} s")
    for problem in bench.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if bench.problems else 0


PARTS: dict[str, Callable[[Bench], None]] = {
    "throughput": Bench.throughput,
    "latency": Bench.latency,
    "startup": Bench.startup,
    "reset": Bench.reset,
    "pytest": Bench.pytest_overhead,
    "memory": Bench.memory,
}


if __name__ == "__main__":
    sys.exit(main())
