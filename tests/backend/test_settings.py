"""Settings from GENSPOT_* variables and overrides, with errors that name the variable."""

from __future__ import annotations

import pytest

from genspot.backend.fetch import FetchSettings
from genspot.backend.settings import Settings, SettingsError


def test_environment_values_are_parsed_by_type():
    settings = Settings.from_env(
        {
            "GENSPOT_PORT": "9000",
            "GENSPOT_ALLOW_LOOPBACK": "true",
            "GENSPOT_ALLOWED_PORTS": "80, 443,8080",
            "GENSPOT_API_KEYS": "a,b",
            "GENSPOT_THRESHOLD": "0.6",
            "GENSPOT_REDIS_URL": "",
            "GENSPOT_BATCH_SHARED_CALL_MS": "",
            "UNRELATED": "x",
        }
    )
    assert (settings.port, settings.allow_loopback, settings.allowed_ports) == (9000, True, (80, 443, 8080))
    assert settings.api_keys == ("a", "b") and settings.threshold == 0.6 and settings.redis_url is None
    assert settings.batch_shared_call_ms is None and Settings.from_env({}).batch_shared_call_ms == 150.0


def test_overrides_beat_the_environment_and_none_means_not_given():
    settings = Settings.from_env({"GENSPOT_PORT": "9000", "GENSPOT_WORKERS": "2"}, port=9100, workers=None)
    assert (settings.port, settings.workers) == (9100, 2)
    assert settings.replace(port=None, host="0.0.0.0").port == 9100


def test_round_trip_through_the_environment():
    settings = Settings(redis_url="redis://r:6379/0", api_keys=("k",), allow_loopback=True, batch_max_wait_ms=2.5,
                        use_alt_text=False)
    assert Settings.from_env(settings.to_env()) == settings
    unbounded = Settings(batch_max_call_ms=None, batch_shared_call_ms=None)  # off, where the defaults bound calls
    assert Settings.from_env(unbounded.to_env()) == unbounded


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GENSPOT_PORT": "eighty"}, "GENSPOT_PORT"),
        ({"GENSPOT_THRESHOLD": "1.5"}, "threshold must be in (0, 1)"),
        ({"GENSPOT_WORKERS": "0"}, "workers must be at least 1"),
        ({"GENSPOT_UNCERTAIN_BAND": "0.7"}, "uncertain_band"),
    ],
)
def test_invalid_values_are_refused_with_the_name(environ, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(environ)


def test_defaults_are_the_safe_embedded_setup():
    settings = Settings.from_env({})
    assert settings.redis_url is None and settings.allow_loopback is False
    assert settings.allowed_ports == (80, 443) and settings.fetch_max_bytes == 10 * 1024 * 1024
    assert settings.bundle == "bundles/default"


def test_the_fetch_defaults_are_the_fetchers_own():
    assert Settings().fetch_settings() == FetchSettings()
    tuned = Settings(fetch_total_timeout_s=2.5, allowed_ports=(8080,), user_agent="probe/1").fetch_settings()
    assert (tuned.total_timeout, tuned.allowed_ports, tuned.user_agent) == (2.5, (8080,), "probe/1")
