"""One settings object, read from the environment once and passed down.

Nothing reads the environment at import time: `Settings.from_env()` is called by the CLI (or a
test builds `Settings(...)` directly) and the result is handed to `create_app` and the services.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from survey.errors import ConfigurationError

ENVIRONMENTS = ("development", "demo", "test", "production")
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_SMS_GATEWAY = "console"
DEFAULT_MAX_BATCH_SIZE = 10_000
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_IMPORT_ROWS = 100_000  # rows of one CSV upload (POST /api/v1/transactions/import)
DEFAULT_PHONE_RETENTION_DAYS = 30
DEFAULT_DB_STATEMENT_TIMEOUT = 30.0  # seconds; PostgreSQL only
DEFAULT_DB_POOL_TIMEOUT = 5.0  # seconds to wait for a free connection of the pool
DEFAULT_DB_POOL_SIZE = 10
DEFAULT_MAX_RECORD_AGE_DAYS = 400  # a transaction older than this is refused as implausible
DEFAULT_CHROMIUM = "chromium"  # the browser that prints a release's report as PDF


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime configuration. Every field maps to one `SURVEY_*` environment variable."""

    database_url: str
    secret_key: bytes = field(repr=False)
    env: str = "development"
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    sms_gateway: str = DEFAULT_SMS_GATEWAY
    sms_webhook_secret: bytes = field(default=b"", repr=False)
    var_dir: Path = Path("var")
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_import_rows: int = DEFAULT_MAX_IMPORT_ROWS
    timezone: str = "Asia/Tehran"
    previous_secret_keys: tuple[bytes, ...] = field(default=(), repr=False)
    phone_retention_days: int = DEFAULT_PHONE_RETENTION_DAYS
    metrics_token: str = field(default="", repr=False)
    # Run the SMS dispatcher inside `survey serve`; None: yes, except when env is "test".
    dispatch_in_serve: bool | None = None
    # How long a statement waits for a lock before the request gets a 503: None is the
    # backend's default (5 s on PostgreSQL; 30 s on SQLite, where writers take turns).
    db_lock_timeout: float | None = None
    db_statement_timeout: float = DEFAULT_DB_STATEMENT_TIMEOUT
    db_pool_timeout: float = DEFAULT_DB_POOL_TIMEOUT
    db_pool_size: int = DEFAULT_DB_POOL_SIZE
    # Addresses (or networks) of the reverse proxies whose X-Forwarded-For is believed; none
    # by default, so no client can choose the address its limits are counted under.
    trusted_proxies: tuple[str, ...] = ()
    # A reported transaction completed longer ago than this is refused (a mistyped year).
    max_record_age_days: int = DEFAULT_MAX_RECORD_AGE_DAYS
    # Not in production: the service's clock starts at this instant and runs on, so that a
    # demo (and the documentation's examples run on it) names the same periods on any day.
    clock_start: datetime | None = None
    # The Chromium that prints a release's report as PDF (a command on PATH or a path); the
    # PDF download answers 503 when it is missing.
    chromium: str = DEFAULT_CHROMIUM

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `SURVEY_*` variables with safe development defaults.

        In production the secret key and database URL must be given explicitly; elsewhere a
        secret is generated once into `var/secret_key` so restarts keep decrypting phones.
        """
        env_vars = os.environ if environ is None else environ
        env = env_vars.get("SURVEY_ENV", "development").strip().lower()
        if env not in ENVIRONMENTS:
            raise ConfigurationError(
                f"SURVEY_ENV must be one of {', '.join(ENVIRONMENTS)}; got {env!r}"
            )
        var_dir = Path(env_vars.get("SURVEY_VAR_DIR", "var"))
        production = env == "production"

        database_url = env_vars.get("SURVEY_DATABASE_URL", "").strip()
        if not database_url:
            if production:
                raise ConfigurationError(
                    "SURVEY_DATABASE_URL is required when SURVEY_ENV=production"
                )
            database_url = f"sqlite:///{(var_dir / 'survey.db').as_posix()}"

        raw_secret = env_vars.get("SURVEY_SECRET_KEY", "").strip()
        if raw_secret:
            secret_key = _decode_secret("SURVEY_SECRET_KEY", raw_secret)
        elif production:
            raise ConfigurationError(
                "SURVEY_SECRET_KEY is required when SURVEY_ENV=production "
                "(at least 32 random bytes, hex or text); generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        else:
            secret_key = _development_secret(var_dir)

        raw_webhook = env_vars.get("SURVEY_SMS_WEBHOOK_SECRET", "").strip()
        previous_raw = env_vars.get("SURVEY_PREVIOUS_SECRET_KEYS", "")
        if not raw_webhook and production:
            raise ConfigurationError(
                "SURVEY_SMS_WEBHOOK_SECRET is required when SURVEY_ENV=production"
            )
        webhook_secret = raw_webhook.encode() if raw_webhook else secret_key
        if production and len(webhook_secret) < 32:
            raise ConfigurationError(
                "SURVEY_SMS_WEBHOOK_SECRET must hold at least 32 bytes when "
                f"SURVEY_ENV=production; got {len(webhook_secret)} (agree a long random "
                "secret with the SMS provider)"
            )
        public_base_url = env_vars.get("SURVEY_PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL)
        public_base_url = _base_url(public_base_url.strip().rstrip("/"))
        if production and raw_webhook and _same_secret(raw_webhook, secret_key, previous_raw):
            raise ConfigurationError(
                "SURVEY_SMS_WEBHOOK_SECRET must differ from SURVEY_SECRET_KEY in production: "
                "the SMS provider holds the webhook secret, never the key to citizens' phones"
            )
        allow_http = _optional_flag(env_vars, "SURVEY_ALLOW_HTTP") or False
        if production and not public_base_url.startswith("https://") and not allow_http:
            raise ConfigurationError(
                "SURVEY_PUBLIC_BASE_URL must be an https:// address when SURVEY_ENV=production "
                f"(citizens' links and cookies depend on it); got {public_base_url[:80]!r}. "
                "On a closed network without TLS set SURVEY_ALLOW_HTTP=1"
            )
        if production and env_vars.get("SURVEY_PASSWORD_HASHING", "").strip():
            raise ConfigurationError(
                "SURVEY_PASSWORD_HASHING is for the test suite only; unset it in production"
            )
        previous = tuple(
            _decode_secret("SURVEY_PREVIOUS_SECRET_KEYS", part.strip())
            for part in env_vars.get("SURVEY_PREVIOUS_SECRET_KEYS", "").split(",")
            if part.strip()
        )

        metrics_token = env_vars.get("SURVEY_METRICS_TOKEN", "").strip()
        if production and metrics_token and len(metrics_token) < 32:
            raise ConfigurationError(
                f"SURVEY_METRICS_TOKEN must be at least 32 characters in production; got "
                f"{len(metrics_token)}"
            )
        trusted_proxies = _networks(env_vars, "SURVEY_TRUSTED_PROXIES")
        clock_start = _clock_start(env_vars)
        if production and clock_start is not None:
            raise ConfigurationError(
                "SURVEY_CLOCK_START is for demos and tests; unset it in production"
            )
        return cls(
            database_url=database_url,
            secret_key=secret_key,
            env=env,
            public_base_url=public_base_url,
            sms_gateway=env_vars.get("SURVEY_SMS_GATEWAY", DEFAULT_SMS_GATEWAY),
            sms_webhook_secret=webhook_secret,
            var_dir=var_dir,
            max_batch_size=_positive_int(env_vars, "SURVEY_MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE),
            max_request_bytes=_positive_int(
                env_vars, "SURVEY_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES
            ),
            max_import_rows=_positive_int(
                env_vars, "SURVEY_MAX_IMPORT_ROWS", DEFAULT_MAX_IMPORT_ROWS
            ),
            dispatch_in_serve=_optional_flag(env_vars, "SURVEY_DISPATCH_IN_SERVE"),
            previous_secret_keys=tuple(key for key in previous if key != secret_key),
            phone_retention_days=_positive_int(
                env_vars, "SURVEY_PHONE_RETENTION_DAYS", DEFAULT_PHONE_RETENTION_DAYS
            ),
            metrics_token=metrics_token,
            db_lock_timeout=_optional_seconds(env_vars, "SURVEY_DB_LOCK_TIMEOUT"),
            db_statement_timeout=_optional_seconds(env_vars, "SURVEY_DB_STATEMENT_TIMEOUT")
            or DEFAULT_DB_STATEMENT_TIMEOUT,
            db_pool_timeout=_optional_seconds(env_vars, "SURVEY_DB_POOL_TIMEOUT")
            or DEFAULT_DB_POOL_TIMEOUT,
            db_pool_size=_positive_int(env_vars, "SURVEY_DB_POOL_SIZE", DEFAULT_DB_POOL_SIZE),
            trusted_proxies=trusted_proxies,
            max_record_age_days=_record_age_days(env_vars),
            clock_start=clock_start,
            chromium=env_vars.get("SURVEY_CHROMIUM", "").strip() or DEFAULT_CHROMIUM,
        )

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (for the CLI's flags and for tests)."""
        return replace(self, **changes)

    @property
    def secret_keys(self) -> tuple[bytes, ...]:
        """The current secret first, then earlier ones still accepted after a rotation."""
        return (self.secret_key, *self.previous_secret_keys)

    @property
    def https(self) -> bool:
        """Whether citizens and staff reach the service over https (cookies are then Secure)."""
        return self.public_base_url.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _clock_start(env_vars: Mapping[str, str]) -> datetime | None:
    raw = env_vars.get("SURVEY_CLOCK_START", "").strip()
    if not raw:
        return None
    try:
        start = datetime.fromisoformat(raw)
    except ValueError:
        start = None
    if start is not None and start.year < 1700:
        raise ConfigurationError(
            "SURVEY_CLOCK_START must be a Gregorian time (ISO 8601); "
            f"{raw[:40]!r} looks like a Solar Hijri date"
        )
    if start is None or start.utcoffset() is None:
        raise ConfigurationError(
            "SURVEY_CLOCK_START must be an ISO 8601 Gregorian time with its UTC offset, "
            f"e.g. 2026-12-04T12:00:00+03:30; got {raw[:40]!r}"
        )
    return start.astimezone(UTC)


def _decode_secret(name: str, raw: str) -> bytes:
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        value = raw.encode()
    if len(value) < 32:
        raise ConfigurationError(
            f"{name} must hold at least 32 bytes of randomness; got {len(value)}"
        )
    return value


def _development_secret(var_dir: Path) -> bytes:
    """Generate the development secret once and keep it, so stored phones stay readable."""
    path = var_dir / "secret_key"
    if path.exists():
        return _decode_secret(str(path), path.read_text().strip())
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return bytes.fromhex(value)


def _positive_int(env_vars: Mapping[str, str], name: str, default: int) -> int:
    raw = env_vars.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number; got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive; got {value}")
    return value


def _record_age_days(env_vars: Mapping[str, str]) -> int:
    """SURVEY_MAX_RECORD_AGE_DAYS: positive, and at most 100 years (records before 2000 are
    refused anyway, and a larger span would not be a date the service can compute)."""
    days = _positive_int(env_vars, "SURVEY_MAX_RECORD_AGE_DAYS", DEFAULT_MAX_RECORD_AGE_DAYS)
    if days > 36_500:
        raise ConfigurationError(f"SURVEY_MAX_RECORD_AGE_DAYS must be at most 36500; got {days}")
    return days


def _networks(env_vars: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (10.0.0.5, 10.0.0.0/24, ::1), checked."""
    found = []
    for part in env_vars.get(name, "").split(","):
        text = part.strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"{name}: {text[:60]!r} is not an IP address or network (e.g. 10.0.0.5 or "
                "10.0.0.0/24)"
            ) from None
        if network.prefixlen < (8 if network.version == 4 else 32):
            raise ConfigurationError(
                f"{name}: {text[:60]!r} would trust nearly every address to name its own "
                "client address; name the proxies themselves (e.g. 10.0.0.5 or 10.0.0.0/24)"
            )
        found.append(str(network.network_address) if network.num_addresses == 1 else str(network))
    return tuple(found)


def _same_secret(raw: str, secret_key: bytes, previous: str) -> bool:
    """Whether a text names the secret key (or an earlier one) in any spelling: as its hex in
    either case, with spaces, or as its text."""
    keys = {secret_key} | {
        _decode_secret("SURVEY_PREVIOUS_SECRET_KEYS", part.strip())
        for part in previous.split(",")
        if part.strip()
    }
    compact = "".join(raw.split())
    candidates = {raw.encode(), compact.encode()}
    with contextlib.suppress(ValueError):  # not hex: compared as text above
        candidates.add(bytes.fromhex(compact))
    return bool(candidates & keys) or compact.lower() in {key.hex() for key in keys}


def _base_url(url: str) -> str:
    """The public base URL: http(s)://host[:port][/path], no credentials, no spaces."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or any(c.isspace() for c in url)
        or parts.query
        or parts.fragment
    ):
        raise ConfigurationError(
            "SURVEY_PUBLIC_BASE_URL must look like https://survey.example.ir (a scheme and a "
            f"host, no user, query or spaces); got {url[:80]!r}"
        )
    return url


def _optional_seconds(env_vars: Mapping[str, str], name: str) -> float | None:
    raw = env_vars.get(name, "").strip()
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds; got {raw!r}") from None
    if not 0 < value <= 3600:
        raise ConfigurationError(f"{name} must be between 0 and 3600 seconds; got {raw!r}")
    return value


def _optional_flag(env_vars: Mapping[str, str], name: str) -> bool | None:
    raw = env_vars.get(name, "").strip().lower()
    if raw == "":
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be 1/true/yes/on or 0/false/no/off; got {raw!r}")
