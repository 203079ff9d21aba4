"""Shared set-up for the access tests: staff with passwords, signing in through `/login`."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import TestClient

from survey.access import users
from survey.context import AppContext
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL

PASSWORD = "correct horse battery staple"
_FIELD = re.compile(r'name="_csrf_token" value="([^"]*)"')


def https_client(app: Litestar) -> TestClient:
    """A client on https (the test settings' base URL is https, so cookies are `Secure`)."""
    return TestClient(app, base_url="https://testserver.local")


def add_staff(
    context: AppContext, username: str, role: str, *, agency: str | None = None
) -> dict[str, str]:
    """A staff user with the test password; returns their bearer headers."""
    with transaction(context.sessions) as session:
        _, issued = users.add_user(
            session, CLI_PRINCIPAL, username=username, role=role, agency=agency, password=PASSWORD
        )
    return {"Authorization": f"Bearer {issued.key}"}


def form_field(html: str) -> str:
    found = _FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/"):  # type: ignore[no-untyped-def]
    """Fetch the form, post it; returns the response of the POST (not followed)."""
    page = client.get("/login")
    assert page.status_code == 200
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "_csrf_token": form_field(page.text),
            "next": next_path,
        },
        follow_redirects=False,
    )
