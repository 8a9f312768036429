"""vesanor-mock: a local, deterministic mock of the Vesanor Runtime API.

The public names are imported on first use, so `import vesanor_mock` (and the pytest
plugin, which every pytest run in the environment loads) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import ControlError, ExpectationFailed, MockClient, Verification
    from .config import Settings
    from .errors import ApiError, ConfigError, MockError, ScenarioError, ScenarioIssue
    from .http.app import create_app
    from .scenarios.files import find_scenario
    from .scenarios.loading import Scenario, fixtures_dir, load_scenario, load_scenario_text
    from .server import MockServer, ServerErrors, ServerStartError

_EXPORTS = {
    "ApiError": ".errors",
    "ConfigError": ".errors",
    "ControlError": ".client",
    "ExpectationFailed": ".client",
    "MockClient": ".client",
    "MockError": ".errors",
    "MockServer": ".server",
    "Scenario": ".scenarios.loading",
    "ScenarioError": ".errors",
    "ScenarioIssue": ".errors",
    "ServerErrors": ".server",
    "ServerStartError": ".server",
    "Settings": ".config",
    "Verification": ".client",
    "create_app": ".http.app",
    "find_scenario": ".scenarios.files",
    "fixtures_dir": ".scenarios.loading",
    "load_scenario": ".scenarios.loading",
    "load_scenario_text": ".scenarios.loading",
}
__all__ = [
    "ApiError",
    "ConfigError",
    "ControlError",
    "ExpectationFailed",
    "MockClient",
    "MockError",
    "MockServer",
    "Scenario",
    "ScenarioError",
    "ScenarioIssue",
    "ServerErrors",
    "ServerStartError",
    "Settings",
    "Verification",
    "create_app",
    "find_scenario",
    "fixtures_dir",
    "load_scenario",
    "load_scenario_text",
]
__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vesanor_mock' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
