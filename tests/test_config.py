"""Where settings come from: flags > VESANOR_MOCK_* > fallback (ini) > defaults."""

from __future__ import annotations

import pytest

from vesanor_mock.config import (
    OPTIONS,
    Settings,
    is_loopback,
    parse_bool,
    resolve,
    settings_from,
)
from vesanor_mock.errors import ConfigError


def test_a_flag_wins_over_the_environment_which_wins_over_the_fallback() -> None:
    env = {"VESANOR_MOCK_PORT": "9001", "VESANOR_MOCK_SEED": "7"}
    fallback = {"port": "9002", "seed": "8", "host": "0.0.0.0"}
    values = resolve({"port": 9000, "seed": None}, env, fallback)
    assert values["port"] == 9000
    assert values["seed"] == 7
    assert values["host"] == "0.0.0.0"


def test_an_option_given_nowhere_is_left_out_so_the_default_applies() -> None:
    values = resolve({}, {"VESANOR_MOCK_CONTROL_TOKEN": ""}, {"validation": ""})
    assert values == {}
    assert settings_from(values) == Settings()


def test_environment_values_are_parsed_and_a_bad_one_names_its_variable() -> None:
    values = resolve({}, {"VESANOR_MOCK_RELOAD": "off", "VESANOR_MOCK_LOG_FORMAT": "json"})
    assert values == {"reload": False, "log_format": "json"}
    with pytest.raises(ConfigError, match=r"VESANOR_MOCK_PORT: expected a port number, got 'x'"):
        resolve({}, {"VESANOR_MOCK_PORT": "x"})
    with pytest.raises(ConfigError, match="VESANOR_MOCK_VALIDATION: expected one of strict"):
        resolve({}, {"VESANOR_MOCK_VALIDATION": "loose"})
    with pytest.raises(ConfigError, match="ini key vesanor_mock_port: expected a port from 0"):
        resolve({}, {}, {"port": "70000"})


def test_settings_take_only_their_own_fields_and_overrides_win() -> None:
    values = {"host": "::1", "port": 1, "reload": True, "scenario_dir": "x", "url": "http://y"}
    settings = settings_from(values, port=0, scenario="s.yaml")
    assert (settings.host, settings.port, settings.scenario) == ("::1", 0, "s.yaml")


def test_every_option_has_an_environment_variable_and_a_flag() -> None:
    assert OPTIONS["control_token"].env == "VESANOR_MOCK_CONTROL_TOKEN"
    assert OPTIONS["control_token"].flag == "--control-token"
    assert all(option.help for option in OPTIONS.values())


def test_booleans_read_the_usual_words_and_refuse_others() -> None:
    assert [parse_bool(w) for w in ("1", "TRUE", "yes", "On")] == [True] * 4
    assert [parse_bool(w) for w in ("0", "false", "No", "off")] == [False] * 4
    with pytest.raises(ValueError, match="expected one of"):
        parse_bool("maybe")


def test_loopback_is_localhost_127_and_ipv6_one_and_nothing_else() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="xml")
