"""The API documentation pages work on a closed network: /schema (Swagger UI) and /schema/redoc
load only this site's files (vendored with their licences), under the site's
Content-Security-Policy, and render in a browser whose every request off the machine goes to a
proxy that records it and refuses it."""

from __future__ import annotations

import gzip
import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.survey.browser_support import chromium, live_server, requires_chromium

STATIC = Path(__file__).resolve().parents[3] / "survey" / "http" / "static"
PAGES = ("/schema", "/schema/swagger", "/schema/redoc")
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
ASSET = re.compile(r"""(?:src|href)=['"]([^'"]+)['"]""")


def test_the_docs_pages_reference_only_this_sites_files(client: TestClient) -> None:
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assets = ASSET.findall(response.text)
        assert any(a.endswith(".js") for a in assets), (page, assets)
        for asset in assets:
            if asset.startswith("data:"):
                continue
            assert asset.startswith("/") and not asset.startswith("//"), (page, asset)
            fetched = client.get(asset)
            assert fetched.status_code == 200, (page, asset)
        assert "http://" not in response.text and "https://" not in response.text, page
        assert "<script>" not in response.text  # no inline script: the CSP holds


def test_only_the_viewers_that_work_offline_are_offered(client: TestClient) -> None:
    for gone in ("/schema/elements", "/schema/rapidoc"):
        assert client.get(gone).status_code == 404
    assert client.get("/schema/openapi.yaml").status_code == 200


def test_the_vendored_files_are_the_published_ones_with_their_licences(
    client: TestClient,
) -> None:
    record = (STATIC / "VENDORED.txt").read_text(encoding="utf-8")
    sums = dict(re.findall(r"(\S+\.(?:js|css))\s+sha256 ([0-9a-f]{64})", record))
    assert set(sums) == {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"}
    for name, digest in sums.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
    for licence in (
        "swagger-ui-dist.LICENSE.txt",
        "swagger-ui-dist.NOTICE.txt",
        "swagger-ui-bundle.js.LICENSE.txt",
        "redoc.LICENSE.txt",
        "redoc.standalone.js.LICENSE.txt",
    ):
        response = client.get(f"/static/{licence}")
        assert response.status_code == 200 and response.text.strip(), licence
    assert "Apache License" in client.get("/static/swagger-ui-dist.LICENSE.txt").text
    assert "MIT License" in client.get("/static/redoc.LICENSE.txt").text


def test_the_viewers_are_sent_compressed_to_browsers_that_accept_it(client: TestClient) -> None:
    plain = client.get("/static/redoc.standalone.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["content-type"].startswith("text/javascript")
    zipped = client.get(
        "/static/redoc.standalone.js", headers={"Accept-Encoding": "gzip"}, extensions={}
    )
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert zipped.content == plain.content  # httpx decompressed it
    raw = zipped.headers.get("content-length")
    assert raw is not None and int(raw) < len(plain.content) / 2
    again = client.get(
        "/static/redoc.standalone.js",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]},
    )
    assert again.status_code == 304
    assert gzip.decompress(gzip.compress(plain.content)) == plain.content


# -- in a browser, with no network -----------------------------------------------------------------


@contextmanager
def refusing_proxy() -> Iterator[tuple[int, list[str]]]:
    """A 'proxy' on a free port that records the first line of every request and closes the
    connection: where the browser would have gone off the machine, it comes here instead."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(1)
                try:
                    line = connection.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    line = ""
                if line:  # Chromium also opens connections ahead of need and sends nothing
                    seen.append(line)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], seen
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def _wait_for(driver: Any, script: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {script}")


@requires_chromium
def test_the_docs_render_with_no_network(app: Litestar, tmp_path: Path) -> None:
    with live_server(app) as base, refusing_proxy() as (port, seen):
        flags = (
            f"--proxy-server=http://127.0.0.1:{port}",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        )
        with chromium(tmp_path / "profile", window=(1280, 900), flags=flags) as driver:
            driver.get(f"{base}/schema")
            swagger = _wait_for(
                driver,
                "var s = document.querySelectorAll('.opblock-summary-path');"
                "return s.length > 40 && Array.from(s).map(e => e.textContent).join(' ');",
            )
            assert "/api/v1/transactions/import" in str(swagger)
            assert "Authorize" in driver.find_element("css selector", "body").text
            driver.save_screenshot(str(tmp_path / "swagger.png"))

            driver.get(f"{base}/schema/redoc")
            redoc = _wait_for(
                driver,
                "var t = document.body.innerText;"
                "return t.indexOf('Report transactions from a CSV file') >= 0 && t;",
            )
            assert "agencyKey" in str(redoc) or "Bearer" in str(redoc)
            loaded = driver.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
            )
            # Redoc's footer links an image of its vendor's; the site's CSP (img-src 'self')
            # stops it in the browser, so it never reaches the proxy below.
            assert {url for url in loaded if not url.startswith(base)} <= {REDOC_LOGO}
            driver.save_screenshot(str(tmp_path / "redoc.png"))
    leaks = [line for line in seen if not _chromiums_own(line)]
    assert leaks == [], f"the docs pages tried to reach the network: {leaks}"


# Chromium's own services (time, updates, sign-in, autofill, the default search engine's
# preconnect) call out whatever the page does; the page's would be a CDN or a font host.
CHROMIUM_SERVICES = re.compile(
    r"^(?:[a-z0-9-]+\.)*(?:google\.com|gvt1\.com|duckduckgo\.com)$"
    r"|^(?!fonts\.)[a-z0-9-]+\.googleapis\.com$"
)


def _chromiums_own(request_line: str) -> bool:
    """Whether a request that reached the proxy is Chromium's own, not the page's."""
    parts = request_line.split()
    if len(parts) < 2:
        return False
    target = parts[1]
    host = target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return bool(CHROMIUM_SERVICES.match(host))
