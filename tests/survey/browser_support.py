"""What the browser tests share: Debian's Chromium driven by selenium, and the app served by a
real uvicorn on a free port in a thread of the test process (so the test's clock and database
are the server's).

The tests are skipped, saying why, where Chromium, its driver or selenium is absent; `.ci/run`
installs them, so CI skips nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from litestar import Litestar

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

requires_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)",
)

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--force-device-scale-factor=1",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(app: Litestar) -> Iterator[str]:
    """`app` on uvicorn at a free port; yields its base URL and stops it afterwards."""
    port = _free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium(
    profile: Path,
    *,
    window: tuple[int, int],
    javascript: bool = True,
    page_load_timeout: float = 30,
    flags: tuple[str, ...] = (),
) -> Iterator[Any]:
    """A headless Chromium (a selenium driver) with its own profile folder, quit afterwards."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    os.environ.setdefault("SE_OFFLINE", "true")  # never download a driver: use Debian's
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    size = f"--window-size={window[0]},{window[1]}"
    for flag in (*_FLAGS, *flags, f"--user-data-dir={profile}", size):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()
