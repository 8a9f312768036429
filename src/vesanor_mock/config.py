"""Settings: one frozen object made at start-up and passed in; nothing global.

Where a value comes from is decided here, once, for the CLI and the pytest plugin alike:
a flag (or pytest option) > a `VESANOR_MOCK_*` environment variable > a fallback (the
pytest ini file) > the default. The environment is passed in, never read at import.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .domain.sessionops import LIMIT_OPTIONS
from .domain.world import DEFAULT_API_KEY, DEFAULT_TENANT, PlanSeed
from .errors import ConfigError
from .recording.urls import parse_upstream

VALIDATION_MODES = ("strict", "lenient", "off")
LOG_FORMATS = ("text", "json", "off")
HTTP_STACKS = ("auto", "pure")
ENV_PREFIX = "VESANOR_MOCK_"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


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
    http_stack: str = "auto"
    replay: str | None = None
    limits: dict[str, int] = field(default_factory=dict)
    body_timeout_s: float = 30.0
    """A request body that has not arrived whole after this long is dropped (slowloris)."""
    """Caps on resident state (PROTOCOL §8) over their defaults; a scenario's options win."""

    def __post_init__(self) -> None:
        if self.validation not in VALIDATION_MODES:
            raise ValueError(
                f"validation must be one of {VALIDATION_MODES}, not {self.validation!r}"
            )
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"log_format must be one of {LOG_FORMATS}, not {self.log_format!r}")
        if self.http_stack not in HTTP_STACKS:
            raise ValueError(f"http_stack must be one of {HTTP_STACKS}, not {self.http_stack!r}")
        if self.control_token is not None and self.control_token in self.api_keys:
            raise ConfigError("the control token must differ from every API key")
        for name, value in self.limits.items():
            if name not in SETTABLE_LIMITS or value < 1:
                raise ConfigError(f"limits: {name}={value} is not a limit ({_limit_names()})")


SETTABLE_LIMITS = (*LIMIT_OPTIONS, "max_delay_ms")


def _limit_names() -> str:
    return "one of " + ", ".join(SETTABLE_LIMITS) + ", each a positive integer"


def parse_limits(text: str) -> dict[str, int]:
    """`max_sessions_per_tenant=100,max_labels_per_session=50`: caps by name."""
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in SETTABLE_LIMITS or not value.strip().isdigit():
            raise ValueError(f"expected NAME=N pairs, {_limit_names()}; got {item!r}")
        limits[name] = int(value)
        if limits[name] < 1:
            raise ValueError(f"{name} must be at least 1")
    return limits


def parse_seconds(text: str) -> float:
    """A positive number of seconds, at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= 86400:
        raise ValueError(f"expected seconds above 0 and at most 86400, got {text}")
    return value


def parse_port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"expected a port from 0 to 65535, got {port}")
    return port


HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def parse_host(text: str) -> str:
    """An address to bind: an IPv4 or IPv6 address, or a host name (`localhost`)."""
    try:
        ipaddress.ip_address(text.strip("[]"))
        return text
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        raise ValueError(
            f"expected an IP address or a host name, got {text!r}: not an IPv4 address"
        )
    if not text or len(text) > 253 or not all(HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"expected an IP address or a host name, got {text!r}")
    return text


def parse_seed(text: str) -> int:
    """A seed: an integer, zero or more."""
    try:
        seed = int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if seed < 0:
        raise ValueError(f"expected an integer of 0 or more, got {seed}")
    return seed


def parse_bool(text: str) -> bool:
    """`1/true/yes/on` or `0/false/no/off`, any case."""
    word = text.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(f"expected one of {', '.join(TRUE_WORDS + FALSE_WORDS)}, got {text!r}")


def choice(*allowed: str) -> Callable[[str], str]:
    """A parser accepting one of `allowed`."""

    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return text

    return parse


def parse_text(text: str) -> str:
    """Any text, as given."""
    return text


@dataclass(frozen=True)
class Option:
    """One setting that a flag, a `VESANOR_MOCK_*` variable or an ini key can give."""

    name: str
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        """Its environment variable, e.g. `VESANOR_MOCK_CONTROL_TOKEN`."""
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        """Its command-line flag, e.g. `--control-token`."""
        return "--" + self.name.replace("_", "-")

    def argtype(self, text: str) -> Any:
        """The parser as an argparse `type` (pytest's too): a bad value reads as its reason."""
        try:
            return self.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("host", parse_host, "address to bind (default 127.0.0.1)"),
        Option("port", parse_port, "port to bind; 0 picks a free one (default 8080)"),
        Option("scenario", parse_text, "scenario file or bundled name (default: default)"),
        Option("scenario_dir", parse_text, "folder where scenario names are looked up first"),
        Option("seed", parse_seed, "seed of the id generator (default 0)"),
        Option("validation", choice(*VALIDATION_MODES), "strict (default), lenient or off"),
        Option("control_token", parse_text, "bearer token the /_mock control API requires"),
        Option(
            "log_format",
            choice(*LOG_FORMATS),
            "access log format: text (default), json, or off (errors only)",
        ),
        Option(
            "http_stack",
            choice(*HTTP_STACKS),
            "auto (default: httptools and uvloop when installed) or pure (asyncio and h11)",
        ),
        Option(
            "body_timeout_s",
            parse_seconds,
            "seconds a request body may take to arrive whole; then the connection is closed "
            "(default 30)",
        ),
        Option(
            "limits",
            parse_limits,
            "caps on resident state, e.g. max_sessions_per_tenant=100,max_labels_per_session=50 "
            "(docs/reliability.md)",
        ),
        Option("reload", parse_bool, "reload the scenario file when it changes (default on)"),
        Option("url", parse_text, "base URL of a running mock (default http://127.0.0.1:8080)"),
        Option("replay", parse_text, "answer /api/v1 from this recording (docs/record-replay.md)"),
        Option("upstream", parse_upstream, "base URL of the runtime to record (http or https)"),
    )
}


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    fallback: Mapping[str, str | None] | None = None,
    names: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The options given anywhere: a flag (not None) > `VESANOR_MOCK_*` > `fallback` text.

    An empty environment variable counts as unset. An option given nowhere is left out,
    so the caller's default applies. A bad value raises ConfigError naming its source.
    """
    values: dict[str, Any] = {}
    for name in names or tuple(OPTIONS):
        option = OPTIONS[name]
        if flags.get(name) is not None:
            values[name] = flags[name]
        elif env.get(option.env):
            values[name] = _parse(option, env[option.env], option.env)
        elif fallback is not None and fallback.get(name) not in (None, ""):
            values[name] = _parse(option, str(fallback[name]), f"ini key vesanor_mock_{name}")
    return values


def _parse(option: Option, text: str, source: str) -> Any:
    try:
        return option.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def settings_from(values: Mapping[str, Any], **overrides: Any) -> Settings:
    """Settings from resolved values (those that are Settings fields) and overrides."""
    names = {f.name for f in dataclasses.fields(Settings)}
    given = {key: value for key, value in {**values, **overrides}.items() if key in names}
    return Settings(**given)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1, ::ffff:127.0.0.1)."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return address.is_loopback or (mapped is not None and mapped.is_loopback)
