"""vesanor-mock: a local, deterministic mock of the Vesanor Runtime API."""

from .config import Settings
from .errors import ApiError, MockError, ScenarioError
from .http.app import create_app

__all__ = ["ApiError", "MockError", "ScenarioError", "Settings", "create_app"]
__version__ = "0.1.0"
