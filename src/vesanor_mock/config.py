"""Settings: one frozen object made at start-up and passed in; nothing global."""

from __future__ import annotations

from dataclasses import dataclass, field

from .domain.world import DEFAULT_API_KEY, DEFAULT_TENANT, PlanSeed

VALIDATION_MODES = ("strict", "lenient", "off")


@dataclass(frozen=True)
class Settings:
    """How one mock server runs. Flags > `VESANOR_MOCK_*` environment > these defaults."""

    host: str = "127.0.0.1"
    port: int = 8080
    seed: int = 0
    validation: str = "strict"
    max_body_bytes: int = 1024 * 1024
    api_keys: dict[str, str] = field(default_factory=lambda: {DEFAULT_API_KEY: DEFAULT_TENANT})
    plans: tuple[PlanSeed, ...] = ()
    scenario: str | None = None
    control_token: str | None = None
    log_format: str = "text"

    def __post_init__(self) -> None:
        if self.validation not in VALIDATION_MODES:
            raise ValueError(
                f"validation must be one of {VALIDATION_MODES}, not {self.validation!r}"
            )
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
