"""SMS gateways behind one port (`base.SmsGateway`), chosen by `SURVEY_SMS_GATEWAY`:

- `console`            log each message (phone masked, tokens redacted), for development;
- `file:PATH`          one JSON line per message, idempotent by local id (tests, the demo);
- `http:URL?sender=S`  a bulk SMS provider over HTTP (see `http.py`); the API key comes from
                       `SURVEY_SMS_API_KEY`, the URL and sender may also come from
                       `SURVEY_SMS_HTTP_URL` and `SURVEY_SMS_SENDER`;
- `memory`             the in-process fake for tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from survey.errors import ConfigurationError
from survey.outreach.gateways.base import (
    DeliveryStatus,
    GatewayError,
    GatewayUnavailable,
    MessageRejected,
    OutgoingSms,
    SendResult,
    SmsGateway,
    mask_phone,
)

__all__ = [
    "DeliveryStatus",
    "GatewayError",
    "GatewayUnavailable",
    "MessageRejected",
    "OutgoingSms",
    "SendResult",
    "SmsGateway",
    "gateway_from_spec",
    "mask_phone",
]

SPECS = "console, file:PATH, http[:URL?sender=LINE], memory"


def gateway_from_spec(
    spec: str,
    *,
    settings: Any = None,
    environ: Mapping[str, str] | None = None,
    http_client: Any = None,
) -> SmsGateway:
    """The gateway a `SURVEY_SMS_GATEWAY` value names; ConfigurationError when it cannot work.

    For `http`, explicit settings (`sms_http_url`, `sms_api_key`, `sms_sender`, once
    config.py has them) win over the spec, which wins over the environment.
    """
    kind, _, rest = spec.strip().partition(":")
    if kind == "console":
        from survey.outreach.gateways.console import ConsoleGateway

        return ConsoleGateway()
    if kind == "memory":
        from survey.outreach.gateways.memory import MemoryGateway

        return MemoryGateway()
    if kind == "file":
        if not rest:
            raise ConfigurationError(
                "SURVEY_SMS_GATEWAY=file needs a path, e.g. file:var/sms.jsonl"
            )
        from survey.outreach.gateways.file import FileGateway

        return FileGateway(rest)
    if kind == "http":
        return _http_gateway(
            rest, settings, os.environ if environ is None else environ, http_client
        )
    raise ConfigurationError(f"SURVEY_SMS_GATEWAY must be one of {SPECS}; got {spec!r}")


def _http_gateway(rest: str, settings: Any, environ: Mapping[str, str], client: Any) -> SmsGateway:
    from survey.outreach.gateways.http import HttpGateway

    url, sender = "", ""
    if rest:
        parts = urlsplit(rest)
        query = parse_qsl(parts.query, keep_blank_values=True)
        sender = next((value for key, value in query if key == "sender"), "")
        kept = urlencode([(key, value) for key, value in query if key != "sender"])
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, kept, ""))
    url = getattr(settings, "sms_http_url", "") or url or environ.get("SURVEY_SMS_HTTP_URL", "")
    sender = getattr(settings, "sms_sender", "") or sender or environ.get("SURVEY_SMS_SENDER", "")
    api_key = getattr(settings, "sms_api_key", "") or environ.get("SURVEY_SMS_API_KEY", "")
    missing = [
        name
        for name, value in (
            ("SURVEY_SMS_HTTP_URL (or http:URL)", url),
            ("SURVEY_SMS_SENDER (or ?sender=)", sender),
            ("SURVEY_SMS_API_KEY", api_key),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(f"SURVEY_SMS_GATEWAY=http needs {', '.join(missing)}")
    try:
        return HttpGateway(url, api_key=api_key, sender=sender, client=client)
    except ValueError as exc:
        raise ConfigurationError(f"SURVEY_SMS_GATEWAY=http: {exc}") from None
