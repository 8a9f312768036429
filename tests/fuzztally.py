"""A tally of what the Schemathesis run checked, printed in pytest's terminal summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest


@dataclass
class FuzzTally:
    """Requests sent by Schemathesis, by operation and status, in the examples and steps."""

    examples: Counter[tuple[str, int]] = field(default_factory=Counter)
    steps: Counter[tuple[str, int]] = field(default_factory=Counter)

    def operations(self) -> set[str]:
        """Every operation that was called at least once."""
        return {label for label, _ in self.examples + self.steps}

    def summary(self) -> list[str]:
        """Lines for the terminal: totals, then the status counts of each operation."""
        statuses: dict[str, Counter[int]] = {}
        for (label, status), count in (self.examples + self.steps).items():
            statuses.setdefault(label, Counter())[status] += count
        lines = [
            f"schemathesis: {len(self.operations())} operations, "
            f"{self.examples.total()} examples, {self.steps.total()} stateful steps, "
            f"{(self.examples + self.steps).total()} requests checked"
        ]
        for label in sorted(statuses):
            counts = ", ".join(f"{s}x{n}" for s, n in sorted(statuses[label].items()))
            lines.append(f"  {label}: {counts}")
        return lines


TALLY = pytest.StashKey[FuzzTally]()
"""Where the fuzz tests keep their tally on the pytest config."""


def tally_of(config: pytest.Config) -> FuzzTally:
    """The run's tally, made on first use."""
    if TALLY not in config.stash:
        config.stash[TALLY] = FuzzTally()
    return config.stash[TALLY]
