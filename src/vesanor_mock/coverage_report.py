"""Coverage reports for people: a terminal summary and a self-contained HTML page (§7.2).

Input is the answer of `GET /_mock/coverage` (`situations`, `covered`, `total`, `missing`).
The pytest plugin and `vesanor-mock coverage` both print and write these. Plain Python.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

SHOWN_MISSING = 10
"""How many missing situations a summary names (the most important first)."""

Report = Mapping[str, Any]


def percent(report: Report) -> float:
    """covered / total as a percentage (100 for an empty catalogue)."""
    total = int(report["total"])
    return 100.0 if total == 0 else 100.0 * int(report["covered"]) / total


def merge(reports: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """Add up several `{situation id: seen}` counts (xdist workers, several servers)."""
    merged: dict[str, int] = {}
    for seen in reports:
        for ident, count in seen.items():
            merged[ident] = merged.get(ident, 0) + int(count)
    return merged


def seen_counts(report: Report) -> dict[str, int]:
    """`{situation id: seen}` of a report, for the situations seen."""
    return {s["id"]: int(s["seen"]) for s in report["situations"] if s["seen"]}


def summary_lines(report: Report, shown: int = SHOWN_MISSING) -> list[str]:
    """`coverage: 41/187 situations (21.9%)`, then the most important missing ones."""
    lines = [
        f"vesanor-mock coverage: {report['covered']}/{report['total']} situations "
        f"({percent(report):.1f}%)"
    ]
    missing = list(report["missing"])
    if missing:
        details = {s["id"]: s["detail"] for s in report["situations"]}
        lines.append(f"most important missing ({min(shown, len(missing))} of {len(missing)}):")
        lines += [f"  {ident}: {details.get(ident, '')}" for ident in missing[:shown]]
    return lines


def below(report: Report, minimum: float | None) -> str | None:
    """A sentence when coverage is under `minimum` percent, else None."""
    if minimum is None or percent(report) >= minimum:
        return None
    return (
        f"vesanor-mock coverage {percent(report):.1f}% is below the minimum of {minimum:g}% "
        f"({report['covered']}/{report['total']} situations)"
    )


def _group(situation: Mapping[str, Any]) -> str:
    endpoint = situation.get("endpoint")
    if endpoint:
        return str(endpoint)
    return {
        "reason": "policy reasons",
        "state": "session states",
        "fault": "faults",
        "effect": "scenario effects",
    }.get(str(situation["kind"]), str(situation["kind"]))


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%;max-width:60rem}
th,td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #ddd}
tr.seen td.state{color:#0b6b2b;background:#e4f5e9}
tr.missing td.state{color:#8a1c1c;background:#fbe7e7;font-weight:600}
code{font-size:.9em}.bar{height:.8rem;background:#fbe7e7;max-width:30rem;border:1px solid #999}
.bar span{display:block;height:100%;background:#2e8b57}
"""


def html_page(report: Report, title: str = "vesanor-mock coverage") -> str:
    """A self-contained HTML page: situations grouped by endpoint, seen or missing.

    Colour marks the state, and so do a glyph and a word ("seen ×3", "missing"), so the
    page reads the same without colour.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for situation in report["situations"]:
        groups.setdefault(_group(situation), []).append(situation)
    share = percent(report)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><strong>{report['covered']}/{report['total']}</strong> situations covered "
        f"(<strong>{share:.1f}%</strong>); {len(report['missing'])} missing.</p>",
        f'<div class="bar" role="img" aria-label="{share:.1f}% covered">'
        f'<span style="width:{share:.1f}%"></span></div>',
    ]
    for name, situations in groups.items():
        covered = sum(1 for s in situations if s["seen"])
        parts.append(f"<h2>{html.escape(name)} ({covered}/{len(situations)})</h2>")
        parts.append("<table><thead><tr><th>state</th><th>situation</th><th>what</th></tr>")
        parts.append("</thead><tbody>")
        for s in situations:
            seen = int(s["seen"])
            state = f"✓ seen ×{seen}" if seen else "✗ missing"
            parts.append(
                f'<tr class="{"seen" if seen else "missing"}"><td class="state">{state}</td>'
                f"<td><code>{html.escape(str(s['id']))}</code></td>"
                f"<td>{html.escape(str(s['detail']))}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
