"""The scenario engine (PROTOCOL.md §5): YAML scenarios in, a WorldSpec out, and back.

| module | concern |
| --- | --- |
| `loading.py` | safe YAML with line numbers, schema check, `load_scenario`; the only yaml user |
| `compose.py` | `extends`: documents merged base first, each value knowing its file |
| `spec.py` | a checked document -> WorldSpec, every semantic problem located |
| `hints.py` | messages in the project's words, "did you mean", name warnings |
| `contracts.py` | contracts folders (`contracts_dir`), each problem in its own file |
| `files.py` | scenarios by name (bundled or in a folder); expectation files for `verify` |
| `export.py` | a run exported as a scenario document (`GET /_mock/export`) |

The names below are the package's public face: `from vesanor_mock.scenarios import
load_scenario` keeps working whichever module holds them.
"""

from __future__ import annotations

from .files import find_scenario, read_expectations
from .loading import (
    Scenario,
    compile_workflow_folder,
    dump_scenario,
    fixtures_dir,
    load_scenario,
    load_scenario_text,
    parse_document,
    read_document,
)
from .reading import MAX_BYTES

__all__ = [
    "MAX_BYTES",
    "Scenario",
    "compile_workflow_folder",
    "dump_scenario",
    "find_scenario",
    "fixtures_dir",
    "load_scenario",
    "load_scenario_text",
    "parse_document",
    "read_document",
    "read_expectations",
]
