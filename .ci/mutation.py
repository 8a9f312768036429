"""Mutation testing of the domain: would a test fail if this line were wrong?

    python .ci/mutation.py                      # every module of src/vesanor_mock/domain
    python .ci/mutation.py --modules policy cycle --per-module 60 --jobs 2
    python .ci/mutation.py --smoke              # a few mutants: the tooling still works

How it works, in three steps:
1. Coverage by test: one pytest run under coverage.py with a context per test records which
   tests execute each line of the domain (skipped with --smoke, which runs one test file).
2. Mutants: each module's syntax tree gives every place where one small change can be made
   (a comparison flipped, a condition negated, `and`/`or` swapped, a constant changed, a
   return value dropped, a statement removed, `+`/`-` swapped). A fixed seed picks up to
   --per-module of them, so two runs mutate the same places.
3. Each mutant is written into a private copy of the checkout and only the tests that cover
   its line are run (-x, with a time limit). A failing test kills the mutant; a mutant that
   survives is listed with its line. Mutants reviewed as equivalent (no behaviour can tell
   them apart) are listed in .ci/mutation-equivalent.txt, by id, and left out of the score.

The score per module is killed / (mutants - equivalent). Results go to stdout and, with
--json FILE, to a file. Exit 1 when a module scores under --min (default 0: report only).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = Path("src/vesanor_mock/domain")
EQUIVALENT = ROOT / ".ci" / "mutation-equivalent.txt"
COPIED = ("src", "tests", "schemas", "fixtures", "docs", "pyproject.toml", "README.md")
SMOKE_MODULE = "operators"
SMOKE_TESTS = ("tests/test_policy.py",)

FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BINOPS: dict[type[ast.operator], type[ast.operator]] = {ast.Add: ast.Sub, ast.Sub: ast.Add}


@dataclass(frozen=True)
class Mutant:
    """One small change: `id` is stable while the module's text around it is unchanged."""

    module: str
    line: int
    kind: str
    text: str  # the mutated line, for the report

    @property
    def id(self) -> str:
        return f"{self.module}:{self.line}:{self.kind}"


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | timeout | equivalent
    tests: int
    seconds: float


class _Sites(ast.NodeVisitor):
    """Every place of a tree where one mutation applies: (node path, kind)."""

    def __init__(self) -> None:
        self.sites: list[tuple[int, str, int]] = []  # (node index, kind, line)
        self.nodes: list[ast.AST] = []

    def _add(self, node: ast.AST, kind: str) -> None:
        self.nodes.append(node)
        self.sites.append((len(self.nodes) - 1, kind, getattr(node, "lineno", 0)))

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Compare) and type(node.ops[0]) in FLIPS:
            self._add(node, "flip-compare")
        elif isinstance(node, ast.BoolOp):
            self._add(node, "swap-boolop")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._add(node, "drop-not")
        elif isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
            self._add(node, "swap-arith")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            self._add(node, "flip-bool")
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            self._add(node, "int-plus-one")
        elif isinstance(node, ast.Return) and node.value is not None:
            self._add(node, "return-none")
        elif isinstance(node, (ast.If, ast.While)):
            self._add(node, "negate-condition")
        if isinstance(node, (ast.Expr, ast.Assign, ast.AugAssign, ast.Raise)) and not (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            self._add(node, "remove-statement")
        super().generic_visit(node)


def _apply(node: ast.AST, kind: str) -> None:
    """Mutate `node` in place."""
    if kind == "flip-compare":
        assert isinstance(node, ast.Compare)
        node.ops[0] = FLIPS[type(node.ops[0])]()
    elif kind == "swap-boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "drop-not":
        assert isinstance(node, ast.UnaryOp)
        node.op = ast.UAdd()  # `+x` of a bool is its int: truthiness unchanged from x
    elif kind == "swap-arith":
        assert isinstance(node, ast.BinOp)
        node.op = BINOPS[type(node.op)]()
    elif kind == "flip-bool":
        assert isinstance(node, ast.Constant)
        node.value = not node.value
    elif kind == "int-plus-one":
        assert isinstance(node, ast.Constant) and isinstance(node.value, int)
        node.value = node.value + 1
    elif kind == "return-none":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(None)
    elif kind == "negate-condition":
        assert isinstance(node, (ast.If, ast.While))
        node.test = ast.UnaryOp(ast.Not(), node.test)
    elif kind == "remove-statement":
        node.__class__ = ast.Pass
        for name in list(node._fields):
            if hasattr(node, name):
                delattr(node, name)
    else:
        raise ValueError(kind)


def mutants_of(path: Path, module: str, per_module: int, seed: int) -> list[tuple[Mutant, str]]:
    """Up to `per_module` mutants of one file, picked with a fixed seed: (mutant, source)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    finder = _Sites()
    finder.visit(ast.parse(source))
    sites = sorted(set(finder.sites), key=lambda site: (site[2], site[1], site[0]))
    seen: set[tuple[int, str]] = set()
    unique = []
    for site in sites:  # one mutant per (line, kind): the id stays stable
        if (site[2], site[1]) not in seen:
            seen.add((site[2], site[1]))
            unique.append(site)
    picked = random.Random(f"{seed}:{module}").sample(unique, min(per_module, len(unique)))
    out = []
    for index, kind, line in sorted(picked, key=lambda site: (site[2], site[1])):
        tree = ast.parse(source)
        again = _Sites()
        again.visit(tree)
        _apply(again.nodes[index], kind)
        mutated = ast.unparse(ast.fix_missing_locations(tree))
        out.append((Mutant(module, line, kind, lines[line - 1].strip()), mutated))
    return out


def coverage_map(tests: tuple[str, ...], workdir: Path) -> dict[tuple[str, int], set[str]]:
    """Which tests run each domain line: one pytest run under coverage with test contexts."""
    data = workdir / ".coverage"
    env = {**os.environ, "COVERAGE_FILE": str(data)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            f"--source={DOMAIN}",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "vesanor_mutation_contexts",
            *tests,
        ],
        cwd=workdir,
        env={**env, "PYTHONPATH": f"{workdir / 'src'}{os.pathsep}{Path(__file__).parent}"},
        stdout=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        print(
            f"warning: the unmutated tests failed (exit {done.returncode}); "
            "mutants covered only by failing tests count as killed",
            flush=True,
        )
    found: dict[tuple[str, int], set[str]] = {}
    with sqlite3.connect(data) as db:
        rows = db.execute(
            "select file.path, context.context, line_bits.numbits from line_bits "
            "join file on file.id = line_bits.file_id "
            "join context on context.id = line_bits.context_id"
        ).fetchall()
    from coverage.numbits import numbits_to_nums

    for path, context, bits in rows:
        if not context or "::" not in context:
            continue
        module = Path(path).stem
        for line in numbits_to_nums(bits):
            found.setdefault((module, line), set()).add(context)
    return found


def copy_tree(into: Path) -> None:
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, into / name)


def run_mutant(
    mutant: Mutant, source: str, tests: list[str], workdir: Path, timeout: float
) -> Outcome:
    target = workdir / DOMAIN / f"{mutant.module}.py"
    original = target.read_text(encoding="utf-8")
    target.write_text(source, encoding="utf-8")
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *sorted(tests)],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(workdir / "src")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )
        status = "killed" if done.returncode != 0 else "survived"
    except subprocess.TimeoutExpired:
        status = "timeout"  # an infinite loop is a behaviour a test noticed
    finally:
        target.write_text(original, encoding="utf-8")
    return Outcome(mutant, status, len(tests), time.monotonic() - started)


def equivalent_ids() -> set[str]:
    if not EQUIVALENT.exists():
        return set()
    lines = EQUIVALENT.read_text(encoding="utf-8").splitlines()
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def report(outcomes: list[Outcome]) -> Iterator[str]:
    modules = sorted({o.mutant.module for o in outcomes})
    yield f"{'module':<14} {'mutants':>7} {'equiv':>5} {'killed':>6} {'score':>7}"
    for module in modules:
        mine = [o for o in outcomes if o.mutant.module == module]
        equivalent = sum(o.status == "equivalent" for o in mine)
        killed = sum(o.status in ("killed", "timeout") for o in mine)
        counted = len(mine) - equivalent
        score = 100.0 * killed / counted if counted else 100.0
        yield f"{module:<14} {len(mine):>7} {equivalent:>5} {killed:>6} {score:>6.1f}%"
    survivors = [o for o in outcomes if o.status == "survived"]
    if survivors:
        yield "survivors (add a test, or list the id in .ci/mutation-equivalent.txt with why):"
        for o in survivors:
            yield f"  {o.mutant.id} [{o.status}] {o.mutant.text}"


def scores(outcomes: list[Outcome]) -> dict[str, float]:
    out = {}
    for module in sorted({o.mutant.module for o in outcomes}):
        mine = [o for o in outcomes if o.mutant.module == module and o.status != "equivalent"]
        killed = sum(o.status in ("killed", "timeout") for o in mine)
        out[module] = 100.0 * killed / len(mine) if mine else 100.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="*", help="domain modules (default: all)")
    parser.add_argument("--per-module", type=int, default=60)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--min", type=float, default=0.0, help="fail under this score (%%)")
    parser.add_argument("--json", metavar="FILE", help="write the outcomes as JSON")
    parser.add_argument("--smoke", action="store_true", help="3 mutants of one module")
    parser.add_argument(
        "--tests", nargs="*", default=["tests"], help="test files or folders to measure and run"
    )
    args = parser.parse_args(argv)

    if args.smoke:
        modules, per_module, tests = [SMOKE_MODULE], 3, SMOKE_TESTS
    else:
        names = sorted(p.stem for p in (ROOT / DOMAIN).glob("*.py") if p.stem != "__init__")
        modules, per_module, tests = args.modules or names, args.per_module, tuple(args.tests)
    unknown = set(modules) - {p.stem for p in (ROOT / DOMAIN).glob("*.py")}
    if unknown:
        parser.error(f"no domain module {sorted(unknown)}")
    equivalent = equivalent_ids()
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        base = Path(scratch) / "base"
        base.mkdir()
        copy_tree(base)
        print(f"coverage by test over {', '.join(tests)} ...", flush=True)
        covered = coverage_map(tests, base)
        work = []
        for module in modules:
            for mutant, source in mutants_of(
                ROOT / DOMAIN / f"{module}.py", module, per_module, args.seed
            ):
                # A line no test context ran is run at import (a default, a table): every
                # selected test imports it, so every selected test is run against it.
                runners = sorted(covered.get((module, mutant.line), set())) or list(tests)
                work.append((mutant, source, runners))
        print(f"{len(work)} mutants of {len(modules)} module(s), {args.jobs} at a time", flush=True)
        copies = []
        for n in range(args.jobs):
            copy = Path(scratch) / f"w{n}"
            shutil.copytree(base, copy)
            copies.append(copy)
        free = list(copies)

        def one(item: tuple[Mutant, str, list[str]]) -> Outcome:
            mutant, source, test_ids = item
            if mutant.id in equivalent:
                return Outcome(mutant, "equivalent", 0, 0.0)
            workdir = free.pop()
            try:
                return run_mutant(mutant, source, test_ids, workdir, args.timeout)
            finally:
                free.append(workdir)

        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = []
            for outcome in pool.map(one, work):
                outcomes.append(outcome)
                print(
                    f"  {outcome.status:<10} {outcome.mutant.id} ({outcome.tests} tests, "
                    f"{outcome.seconds:.1f} s)",
                    flush=True,
                )
    for line in report(outcomes):
        print(line)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {**asdict(o.mutant), "id": o.mutant.id, "status": o.status, "tests": o.tests}
                    for o in outcomes
                ],
                indent=2,
            )
            + "\n"
        )
    below = {m: s for m, s in scores(outcomes).items() if s < args.min}
    if below:
        print(f"under {args.min}%: {below}")
        return 1
    if args.smoke and not any(o.status in ("killed", "timeout") for o in outcomes):
        print("smoke: no mutant was killed: the tooling is broken")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
