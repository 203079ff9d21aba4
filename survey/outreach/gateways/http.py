"""`http`: a bulk SMS provider over HTTP, in the style of Iranian providers (Kavenegar, SMS.ir,
Ghasedak): an API key, a sender line, the receptor, the message and our own local id.

The contract (configurable base URL; JSON both ways; the key in the `apikey` header):

    POST {url}/send     {"sender", "receptor", "message", "localid"}
        200 -> {"messageid": "...", "status": "queued|sent|delivered|undelivered|failed"}
        409 -> {"messageid", "status"}: that localid was already accepted (treated as success)
    GET  {url}/status?localid=...
        200 -> {"messageid", "status"};   404 -> the provider never got that localid

`receptor` is the national form (09121234567) these providers expect. Timeouts, connection
errors, 429 and 5xx raise GatewayUnavailable (retried after a status check, since the provider
may have the message); any other 4xx raises MessageRejected. Error messages carry the status
and the provider's words, never the phone number or the API key.
"""

from __future__ import annotations

from typing import Any

import httpx

from survey.outreach.gateways.base import (
    DeliveryStatus,
    GatewayUnavailable,
    MessageRejected,
    OutgoingSms,
    SendResult,
    SmsGateway,
)

__all__ = ["HttpGateway", "national_receptor"]

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def national_receptor(phone: str) -> str:
    """+989121234567 -> 09121234567 (other forms are passed through)."""
    if phone.startswith("+98"):
        return "0" + phone[3:]
    return phone


class HttpGateway(SmsGateway):
    name = "http"

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        sender: str,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"SMS provider url must start with http:// or https://; got {url!r}")
        if not api_key:
            raise ValueError("the http SMS gateway needs an API key (SURVEY_SMS_API_KEY)")
        if not sender:
            raise ValueError("the http SMS gateway needs a sender line (SURVEY_SMS_SENDER)")
        self.url = url.rstrip("/")
        self.sender = sender
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None
        self._headers = {"apikey": api_key, "accept": "application/json"}

    def send(self, message: OutgoingSms) -> SendResult:
        payload = {
            "sender": self.sender,
            "receptor": national_receptor(message.to),
            "message": message.text,
            "localid": message.local_id,
        }
        response = self._call("POST", "/send", json=payload)
        if response.status_code in (200, 201, 409):
            body = _json(response)
            return SendResult(_status(body.get("status", "queued")), _text(body.get("messageid")))
        raise MessageRejected(f"provider refused message {message.local_id}: {_reason(response)}")

    def status(self, local_id: str) -> DeliveryStatus | None:
        response = self._call("GET", "/status", params={"localid": local_id})
        if response.status_code == 404:
            return None
        if response.status_code == 200:
            return _status(_json(response).get("status"))
        raise GatewayUnavailable(f"status of {local_id}: {_reason(response)}")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(
                method, self.url + path, headers=self._headers, **kwargs
            )
        except httpx.TimeoutException as exc:
            raise GatewayUnavailable(f"SMS provider timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"SMS provider unreachable ({type(exc).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise GatewayUnavailable(f"SMS provider busy: {_reason(response)}")
        return response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise GatewayUnavailable(
            f"SMS provider answered {response.status_code} without JSON"
        ) from None
    if not isinstance(body, dict):
        raise GatewayUnavailable(f"SMS provider answered {response.status_code} with a non-object")
    return body


def _status(raw: object) -> DeliveryStatus:
    try:
        return DeliveryStatus(str(raw).lower())
    except ValueError:
        raise GatewayUnavailable(
            f"SMS provider reported an unknown status {raw!r}; expected one of "
            f"{', '.join(s.value for s in DeliveryStatus)}"
        ) from None


def _text(raw: object) -> str | None:
    return None if raw is None else str(raw)[:120]


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("message") or body.get("error") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    return f"HTTP {response.status_code}" + (f" ({str(detail)[:200]})" if detail else "")
