"""vesanor-mock: a local, deterministic mock of the Vesanor Runtime API."""

from .config import Settings
from .errors import ApiError, MockError, ScenarioError, ScenarioIssue
from .http.app import create_app
from .scenarios import Scenario, fixtures_dir, load_scenario, load_scenario_text

__all__ = [
    "ApiError",
    "MockError",
    "Scenario",
    "ScenarioError",
    "ScenarioIssue",
    "Settings",
    "create_app",
    "fixtures_dir",
    "load_scenario",
    "load_scenario_text",
]
__version__ = "0.1.0"
