"""All service settings in one object, read from ``GENSPOT_*`` environment variables.

Nothing here runs at import time: ``Settings.from_env()`` is called by ``create_app`` callers
(``genspot serve``, ``genspot scan``, tests), and command-line options are applied on top with
``settings.replace(...)``. Every field is documented in docs/backend.md; the environment
variable of field ``foo_bar`` is ``GENSPOT_FOO_BAR``. Lists are comma-separated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import msgspec

from genspot.backend.fetch import FetchSettings

ENV_PREFIX = "GENSPOT_"
MB = 1024 * 1024
_FETCH = FetchSettings()


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the environment variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Everything the service can be configured with (defaults are the embedded, single-box setup)."""

    # model
    bundle: str = "bundles/default"
    device: str = "cpu"
    # HTTP server
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    graceful_shutdown_s: float = 10.0
    worker_start_timeout_s: int = 180
    # a connection's request headers must arrive within header_timeout_s of its first byte (or of
    # the connection), its body within body_timeout_s of the headers; else it is closed (backend/api/connections.py)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    # cache
    redis_url: str | None = None
    redis_cluster: bool = False
    cache_ttl_s: int = 7 * 24 * 3600
    url_ttl_s: int = 3600
    # how long a URL entry is used without asking its host; after that, a conditional request (backend/pipeline/service.py)
    url_fresh_s: float = 60.0
    memory_cache_items: int = 10_000
    # URL entries one URL keeps (page origins x User-Agents), and one client writes per rate-limit window (backend/cache/url_entries.py)
    url_variants_per_url: int = 8
    url_entries_per_client: int = 1000
    redis_timeout_ms: int = 200
    redis_retries: int = 1
    breaker_failures: int = 3
    breaker_reset_s: float = 5.0
    # verdicts: "uncertain" when |p_ai - threshold| < uncertain_band. None: the bundle's band (its
    # manifest's verdict_band, chosen with the detector), else 0.5 and 0.15
    threshold: float | None = None
    uncertain_band: float | None = None
    # Whether the model sees the alt-text. None (auto): only when the bundle's manifest says it cannot
    # move p_ai (``alt_text`` "source_only": pages write alt-texts, so they must not decide verdicts);
    # True: always (a model trained where captions carry no label); False: never.
    use_alt_text: bool | None = None
    # inference
    batch_max_size: int = 32
    batch_max_wait_ms: float = 5.0
    # about the longest one model call may take (items per call cut to fit, measured): every other client's
    # item waits for the running call, so it bounds their latency under a flood; None: batch_max_size alone decides
    batch_max_call_ms: float | None = 500.0
    # the same while two or more clients share the model (items waiting, or asked in the last 2 s): shorter calls
    # for their turns; a lone client keeps batch_max_call_ms (backend/model/batcher.py). None: batch_max_call_ms always
    batch_shared_call_ms: float | None = 150.0
    decode_threads: int = 4
    # work waiting for decoding or the model, in all and per client (API key, else address): past it, 503 (backend/pipeline/admission.py)
    queue_max_items: int = 256
    queue_max_items_per_client: int = 128
    # seconds of waiting worth one step of priority, so nothing waits for ever behind more urgent work (backend/model/fair.py)
    priority_age_s: float = 1.0
    # fetching: the defaults are the fetcher's own (FetchSettings), see fetch_settings()
    fetch_connect_timeout_s: float = _FETCH.connect_timeout
    fetch_read_timeout_s: float = _FETCH.read_timeout
    fetch_total_timeout_s: float = _FETCH.total_timeout
    fetch_max_bytes: int = _FETCH.max_bytes
    fetch_max_redirects: int = _FETCH.max_redirects
    fetch_max_connections: int = _FETCH.max_connections
    max_pixels: int = 40_000_000
    # animated images: shown frames judged, and pixels decoded to reach them, at most per image (backend/model/frames.py)
    animation_max_frames: int = 8
    animation_max_pixels: int = 48_000_000
    # pixels being decoded at once in a process, and decoded for one request in all (backend/model/dispatch.py)
    max_pixels_in_flight: int = 40_000_000
    max_pixels_per_request: int = 256_000_000
    allowed_ports: tuple[int, ...] = _FETCH.allowed_ports
    allow_loopback: bool = _FETCH.allow_loopback
    user_agent: str = _FETCH.user_agent
    # access
    api_keys: tuple[str, ...] = ()
    rate_limit_per_key: int = 600
    rate_limit_per_client: int = 120
    rate_limit_window_s: int = 60
    # wrong or missing API keys per client address and window before that address gets 429
    auth_failures_per_client: int = 10
    # whether /schema answers without a key; None: open unless api_keys are set
    open_schema: bool | None = None
    trust_forwarded_for: bool = False
    max_request_bytes: int = 32 * MB
    cors_origins: tuple[str, ...] = ()
    cors_origin_regex: str | None = r"^(chrome|moz)-extension://[a-z0-9-]+$"
    # refuse POSTs whose browser Origin is neither in cors_origins nor matches cors_origin_regex (backend/api/browser.py)
    check_origin: bool = True
    # wrong-verdict reports (POST /v1/feedback, backend/api/feedback.py): JSON Lines file, reports per client per hour
    feedback_path: str = "~/.local/share/genspot/feedback.jsonl"
    feedback_per_client_per_hour: int = 20

    def __post_init__(self) -> None:
        problems = []
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            problems.append(f"threshold must be in (0, 1), got {self.threshold}")
        if self.uncertain_band is not None and not 0.0 <= self.uncertain_band < 0.5:
            problems.append(f"uncertain_band must be in [0, 0.5), got {self.uncertain_band}")
        positive = (
            "workers", "batch_max_size", "decode_threads", "fetch_max_connections", "memory_cache_items", "animation_max_frames", "queue_max_items",
            "queue_max_items_per_client", "max_pixels_in_flight", "url_variants_per_url",
        )
        for name in positive:
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if problems:
            raise SettingsError("; ".join(problems))

    @property
    def schema_is_open(self) -> bool:
        """``/schema`` without a key: as ``open_schema`` says, else only on an instance without keys."""
        return self.open_schema if self.open_schema is not None else not self.api_keys

    def fetch_settings(self) -> FetchSettings:
        """The fetcher's view of these settings (its ``max_url_length`` stays the fetcher's own)."""
        return FetchSettings(
            connect_timeout=self.fetch_connect_timeout_s,
            read_timeout=self.fetch_read_timeout_s,
            total_timeout=self.fetch_total_timeout_s,
            max_bytes=self.fetch_max_bytes,
            max_redirects=self.fetch_max_redirects,
            allowed_ports=tuple(self.allowed_ports),
            allow_loopback=self.allow_loopback,
            user_agent=self.user_agent,
            max_connections=self.fetch_max_connections,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Settings from ``GENSPOT_*`` variables (default ``os.environ``), then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            raw = environ.get(env_name(name))
            if raw is not None:
                values[name] = _parse(name, raw)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return _build(values)

    def replace(self, **overrides: Any) -> "Settings":
        """A copy with ``overrides`` applied (``None`` values are ignored: "not given")."""
        values = msgspec.structs.asdict(self)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return _build(values)

    def to_env(self) -> dict[str, str]:
        """The ``GENSPOT_*`` variables that reproduce these settings (for worker processes)."""
        env = {}
        for name, value in msgspec.structs.asdict(self).items():
            if value is None:
                if name in _OPTIONAL_FIELDS:  # "none" for a field whose default is something
                    env[env_name(name)] = ""
                continue
            if isinstance(value, tuple):
                value = ",".join(map(str, value))
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[env_name(name)] = str(value)
        return env


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _parse(name: str, raw: str) -> Any:
    """Environment strings -> field values; tuples are comma-separated, empty means none."""
    default = Settings.__struct_defaults__[Settings.__struct_fields__.index(name)]
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if raw == "" and name in _OPTIONAL_FIELDS:
        return None
    return raw


_OPTIONAL_FIELDS = {"redis_url", "cors_origin_regex", "use_alt_text", "open_schema", "batch_max_call_ms", "batch_shared_call_ms"}


def _build(values: dict[str, Any]) -> Settings:
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.rsplit("$.", 1)[-1].strip("`") if "$." in message else ""
        where = f" ({env_name(field.split('[')[0])})" if field else ""
        raise SettingsError(f"invalid setting{where}: {message}") from exc
