"""`extends:` (PROTOCOL.md §5): a chain of scenario documents merged into one, with provenance.

Plain data in, plain data out: the loader reads the files, this module merges them. The
chain is given base first, the extending file last. Merge rules:

- `seed` overrides; `scenario` and `description` name the file they are written in and are
  never inherited (a file that extends `default` is not called `default`);
- `options` and `clock` keys override one by one;
- `tenants` merge by `name`, `plans` by (`tenant`, `agent`, `environment`), `sessions` by
  (`tenant`, `session_id`): an item with the same key replaces the base's in place, any
  other is appended;
- `rules` are the base's followed by this file's;
- `expect` comes from the last file only: expectations belong to the story they were
  written for.

Every value of the merged document remembers where it was written (`Origin`), so a problem
found in the merged document is reported in the file, line and column that wrote it.
A `contracts_dir` is relative to the file that names it; a base's is made absolute here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCALARS = ("seed",)
MAPPINGS = ("options", "clock")
KEYED = ("tenants", "plans", "sessions")
NAMES = ("scenario", "description")
DEFAULT_ENVIRONMENT = "development"


@dataclass(frozen=True)
class Part:
    """One file of a chain: its name, folder, (checked) document, and how to locate in it."""

    filename: str
    folder: Path
    data: Mapping[str, Any]
    locate: Callable[[str], tuple[int | None, int | None]]


@dataclass
class Origin:
    """Where each value of a merged document was written: pointer prefix -> (part, pointer)."""

    last: int
    prefixes: dict[str, tuple[int, str]] = field(default_factory=dict)

    def source(self, path: str) -> tuple[int, str]:
        """The part and the pointer in that part's own document for a merged pointer."""
        probe = path
        while True:
            if probe in self.prefixes:
                index, written = self.prefixes[probe]
                return index, written + path[len(probe) :]
            if not probe:
                return self.last, path
            probe = probe.rsplit("/", 1)[0]


def merge(parts: Sequence[Part]) -> tuple[dict[str, Any], Origin]:
    """The chain's documents merged base first, and where each merged value came from."""
    merged: dict[str, Any] = {}
    origin = Origin(last=len(parts) - 1)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        data = _absolute_dirs(part) if not last else dict(part.data)
        for key in (*SCALARS, *(NAMES if last else ())):
            if key in data:
                merged[key] = data[key]
                origin.prefixes[f"/{key}"] = (index, f"/{key}")
        for key in MAPPINGS:
            for name, value in data.get(key, {}).items():
                merged.setdefault(key, {})[name] = value
                origin.prefixes[f"/{key}/{_escape(name)}"] = (index, f"/{key}/{_escape(name)}")
        for key in KEYED:
            if key in data:
                _merge_list(merged, origin, key, data[key], index)
        for key in ("rules", "expect") if last else ("rules",):
            if key not in data:
                continue
            items = merged.setdefault(key, [])
            for position, item in enumerate(data[key]):
                if item is not None:  # None: set aside, its schema error already reported
                    origin.prefixes[f"/{key}/{len(items)}"] = (index, f"/{key}/{position}")
                    items.append(item)
    return merged, origin


def _merge_list(
    merged: dict[str, Any], origin: Origin, key: str, items: Sequence[Any], index: int
) -> None:
    present: list[Any] = merged.setdefault(key, [])
    tenants = [t.get("name") for t in merged.get("tenants", [])]
    first_tenant = tenants[0] if tenants else None
    inherited = len(present)  # only a base's items are replaced: a file's own duplicates stay
    for position, item in enumerate(items):
        if item is None:  # set aside: its schema error is already reported
            continue
        identity = _identity(key, item, first_tenant)
        slot = next(
            (
                i
                for i, old in enumerate(present[:inherited])
                if identity is not None and _identity(key, old, first_tenant) == identity
            ),
            None,
        )
        if slot is None:
            slot = len(present)
            present.append(item)
        else:
            present[slot] = item
        origin.prefixes[f"/{key}/{slot}"] = (index, f"/{key}/{position}")


def _identity(key: str, item: Any, first_tenant: str | None) -> tuple[Any, ...] | None:
    """What makes two items of a list the same one (None: never the same)."""
    if not isinstance(item, Mapping):
        return None
    if key == "tenants":
        return (item.get("name"),)
    tenant = item.get("tenant", first_tenant)
    if key == "plans":
        return (tenant, item.get("agent"), item.get("environment", DEFAULT_ENVIRONMENT))
    if "session_id" not in item:
        return None
    return (tenant, item["session_id"])


def _absolute_dirs(part: Part) -> dict[str, Any]:
    """A base's document with each `contracts_dir` made absolute (relative to its file)."""
    data = dict(part.data)
    folder = part.folder.resolve()
    if "plans" in data:
        data["plans"] = [_with_dir(plan, folder) for plan in data["plans"]]
    if "sessions" in data:
        sessions = []
        for seed in data["sessions"]:
            contract = seed.get("contract") if isinstance(seed, Mapping) else None
            if isinstance(contract, Mapping) and "contracts_dir" in contract:
                seed = {**seed, "contract": _with_dir(contract, folder)}
            sessions.append(seed)
        data["sessions"] = sessions
    return data


def _with_dir(item: Any, folder: Path) -> Any:
    if isinstance(item, Mapping) and isinstance(item.get("contracts_dir"), str):
        return {**item, "contracts_dir": str(folder / item["contracts_dir"])}
    return item


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")
