"""The stylesheets under /static: shipped files by name, anything else a 404 (never a 500)."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient


def test_a_stylesheet_is_served_with_a_validator(client: TestClient) -> None:
    response = client.get("/static/publication.css")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert "max-age" in response.headers["cache-control"]
    again = client.get(
        "/static/publication.css", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/%00",
        "/static/login.css%00.png",
        "/static/" + "a" * 5000,
        "/static/..%2f..%2fetc%2fpasswd",
        "/static/../app.py",
        "/static/nothing.css",
        "/static/",
    ],
)
def test_anything_else_is_a_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, (path[:40], response.status_code)
