"""SMS gateways: file (JSON lines, idempotent), console (no phone in logs), http (provider
contract over a mock transport), the memory fake and the spec factory."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from survey.errors import ConfigurationError
from survey.outreach.gateways import (
    DeliveryStatus,
    GatewayUnavailable,
    MessageRejected,
    OutgoingSms,
    gateway_from_spec,
)
from survey.outreach.gateways.console import ConsoleGateway
from survey.outreach.gateways.file import FileGateway
from survey.outreach.gateways.http import HttpGateway
from survey.outreach.gateways.memory import MemoryGateway

PHONE = "+989121234567"


def _sms(local_id: str = "inv1-invite", text: str = "سلام https://x.ir/s/abcdefgh") -> OutgoingSms:
    return OutgoingSms(to=PHONE, text=text, local_id=local_id, invitation_id=1, kind="invite")


def test_file_gateway_writes_one_json_line_per_message(tmp_path: Path) -> None:
    path = tmp_path / "out" / "sms.jsonl"
    gateway = FileGateway(path)
    assert gateway.status("inv1-invite") is None
    gateway.send(_sms())
    gateway.send(_sms("inv1-q1", "۲"))
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert lines == [
        {
            "to": PHONE,
            "text": "سلام https://x.ir/s/abcdefgh",
            "invitation_id": 1,
            "kind": "invite",
            "local_id": "inv1-invite",
        },
        {"to": PHONE, "text": "۲", "invitation_id": 1, "kind": "invite", "local_id": "inv1-q1"},
    ]
    assert gateway.status("inv1-invite") is DeliveryStatus.sent


def test_file_gateway_never_writes_a_local_id_twice_even_from_another_instance(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sms.jsonl"
    FileGateway(path).send(_sms())
    recovered = FileGateway(path)  # a restarted dispatcher
    assert recovered.status("inv1-invite") is DeliveryStatus.sent
    recovered.send(_sms())
    assert len(path.read_text("utf-8").splitlines()) == 1


def test_console_gateway_logs_without_phone_or_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    gateway = ConsoleGateway()
    gateway.send(_sms())
    gateway.send(_sms())  # a recovered resend is not logged again
    assert len(caplog.records) == 1
    logged = caplog.text
    assert "9121234567" not in logged and "912" not in logged
    assert "abcdefgh" not in logged and "/s/<token>" in logged
    assert "67" in logged and "inv1-invite" in logged
    assert "9121234567" not in repr(_sms())


def test_memory_gateway_records_failures_and_statuses() -> None:
    gateway = MemoryGateway()
    gateway.fail_next(1, GatewayUnavailable("down"))
    with pytest.raises(GatewayUnavailable):
        gateway.send(_sms())
    assert gateway.status("inv1-invite") is None
    gateway.send(_sms())
    assert gateway.status("inv1-invite") is DeliveryStatus.sent
    assert gateway.texts_to(PHONE) == [_sms().text]


class Provider:
    """A stand-in for the provider's HTTP API, behind httpx.MockTransport."""

    def __init__(self) -> None:
        self.accepted: dict[str, dict[str, str]] = {}
        self.requests: list[httpx.Request] = []
        self.next_status: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("apikey") != "KEY":
            return httpx.Response(401, json={"message": "bad api key"})
        if self.next_status is not None:
            status, self.next_status = self.next_status, None
            return httpx.Response(status, json={"message": "provider says no"})
        if request.url.path.endswith("/send"):
            body = json.loads(request.content)
            if body["localid"] in self.accepted:
                return httpx.Response(409, json=self.accepted[body["localid"]])
            entry = {"messageid": f"m{len(self.accepted) + 1}", "status": "queued"}
            self.accepted[body["localid"]] = entry
            return httpx.Response(200, json=entry)
        local_id = request.url.params["localid"]
        if local_id not in self.accepted:
            return httpx.Response(404, json={"message": "unknown localid"})
        return httpx.Response(200, json={**self.accepted[local_id], "status": "delivered"})


def _http(provider: Provider, key: str = "KEY") -> HttpGateway:
    client = httpx.Client(transport=httpx.MockTransport(provider))
    return HttpGateway("https://sms.example.ir/v1", api_key=key, sender="3000123", client=client)


def test_http_gateway_sends_in_the_providers_shape() -> None:
    provider = Provider()
    result = _http(provider).send(_sms())
    assert result.status is DeliveryStatus.queued and result.provider_id == "m1"
    request = provider.requests[0]
    assert request.method == "POST" and str(request.url) == "https://sms.example.ir/v1/send"
    assert json.loads(request.content) == {
        "sender": "3000123",
        "receptor": "09121234567",
        "message": _sms().text,
        "localid": "inv1-invite",
    }


def test_http_gateway_status_by_local_id_and_duplicate_send() -> None:
    provider = Provider()
    gateway = _http(provider)
    assert gateway.status("inv1-invite") is None
    gateway.send(_sms())
    assert gateway.status("inv1-invite") is DeliveryStatus.delivered
    again = gateway.send(_sms())  # the provider refuses a duplicate local id: not an error
    assert again.provider_id == "m1" and len(provider.accepted) == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_http_gateway_busy_provider_is_temporary(status: int) -> None:
    provider = Provider()
    provider.next_status = status
    with pytest.raises(GatewayUnavailable, match=str(status)):
        _http(provider).send(_sms())


def test_http_gateway_rejection_is_permanent_and_names_no_secret() -> None:
    with pytest.raises(MessageRejected, match="401") as caught:
        _http(Provider(), key="WRONG").send(_sms())
    assert "WRONG" not in str(caught.value) and "912" not in str(caught.value)


def test_http_gateway_timeout_is_temporary() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = httpx.Client(transport=httpx.MockTransport(timeout))
    gateway = HttpGateway("https://sms.example.ir", api_key="K", sender="S", client=client)
    with pytest.raises(GatewayUnavailable, match="timed out"):
        gateway.send(_sms())
    with pytest.raises(GatewayUnavailable):
        gateway.status("x")


def test_spec_factory(tmp_path: Path) -> None:
    assert isinstance(gateway_from_spec("console"), ConsoleGateway)
    assert isinstance(gateway_from_spec("memory"), MemoryGateway)
    file_gateway = gateway_from_spec(f"file:{tmp_path / 's.jsonl'}")
    assert isinstance(file_gateway, FileGateway) and file_gateway.path == tmp_path / "s.jsonl"
    http_gateway = gateway_from_spec(
        "http:https://sms.example.ir/v1?sender=3000123", environ={"SURVEY_SMS_API_KEY": "K"}
    )
    assert isinstance(http_gateway, HttpGateway)
    assert http_gateway.url == "https://sms.example.ir/v1" and http_gateway.sender == "3000123"
    from_env = gateway_from_spec(
        "http",
        environ={
            "SURVEY_SMS_API_KEY": "K",
            "SURVEY_SMS_HTTP_URL": "https://p.ir/api",
            "SURVEY_SMS_SENDER": "1000",
        },
    )
    assert isinstance(from_env, HttpGateway) and from_env.sender == "1000"


@pytest.mark.parametrize(
    ("spec", "environ", "message"),
    [
        ("sms", {}, "must be one of"),
        ("file:", {}, "needs a path"),
        ("http:https://p.ir?sender=1", {}, "SURVEY_SMS_API_KEY"),
        ("http", {"SURVEY_SMS_API_KEY": "K"}, "SURVEY_SMS_HTTP_URL"),
        ("http:ftp://p.ir?sender=1", {"SURVEY_SMS_API_KEY": "K"}, "http:// or https://"),
    ],
)
def test_spec_factory_names_what_is_missing(
    spec: str, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        gateway_from_spec(spec, environ=environ)
