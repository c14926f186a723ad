"""End to end in a real browser: the API and the Streamlit page as processes, Chromium driving.

Debian's ``/usr/bin/chromium`` is driven by Playwright's Python package (never ``playwright
install``). Skips on a machine without Chromium; FAILS under ``CI=true``, where the Makefile
installs it. Leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.config import PROJECT_ROOT
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.db.seed import load_seed
from tests.conftest import IN_CI

CHROMIUM = os.environ.get("SHOPWISE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
# The same look as `make run` (Makefile STREAMLIT_FLAGS).
STREAMLIT_LOOK = ["--client.toolbarMode", "minimal", "--theme.primaryColor", "#0f766e"]

pytestmark = pytest.mark.browser


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; the browser test is required under CI=true (make test installs it)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log.read_text(errors="replace")
            raise RuntimeError(f"{proc.args} exited early:\n{out[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer in {seconds:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        _missing(f"Chromium is not installed at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright Python package is not installed")

    data = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite:///{data / 'shop.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    load_seed(engine, PROJECT_ROOT / "seed_data")
    engine.dispose()

    api_port, ui_port = _free_port(), _free_port()
    api_url, ui_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DATA_DIR": str(data),
        "REDIS_URL": "",
        "OPENAI_API_KEY": "",
        "API_HOST": "127.0.0.1",
        "SHOPWISE_API_URL": api_url,
        "PYTHONUNBUFFERED": "1",
    }
    bin_dir = Path(sys.executable).parent
    api_log, ui_log = data / "api.log", data / "ui.log"
    api_out, ui_out = api_log.open("wb"), ui_log.open("wb")
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(api_port), "--log-level", "warning"],
        cwd=PROJECT_ROOT, env=env, stdout=api_out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    ui = subprocess.Popen(
        [str(bin_dir / "streamlit"), "run", "chat_ui/app.py", "--server.headless", "true",
         "--server.port", str(ui_port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", *STREAMLIT_LOOK],
        cwd=PROJECT_ROOT, env=env, stdout=ui_out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_http(f"{api_url}/health", api, api_log)
        _wait_http(f"{ui_url}/_stcore/health", ui, ui_log)
        yield api_url, ui_url
    finally:
        _stop(ui)
        _stop(api)
        api_out.close()
        ui_out.close()


def test_shopper_chats_refines_and_adds_to_cart(servers: tuple[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    api_url, ui_url = servers
    shopper = httpx.get(f"{api_url}/users", params={"limit": 1}).json()["items"][0]
    label = f"{shopper['full_name'] or shopper['username']} (@{shopper['username']})"
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.set_default_timeout(30_000)
            page.goto(ui_url)
            expect(page.get_by_text("What can I help you find today?")).to_be_visible()

            page.get_by_test_id("stSelectbox").click()
            page.get_by_role("option", name=label).click()
            expect(page.get_by_text("For you", exact=True)).to_be_visible()

            box = page.get_by_test_id("stChatInputTextArea")
            box.fill("wireless earbuds under $120")
            box.press("Enter")
            cards = page.locator('[data-testid="product-card"]:visible')
            expect(cards.first).to_be_visible()
            expect(page.get_by_role("button").filter(has_text="under $120").first).to_be_visible()
            first_turn = cards.count()
            assert first_turn >= 2

            box.fill("cheaper")
            box.press("Enter")
            expect(page.locator('[data-testid="stChatMessage"]')).to_have_count(4)
            expect(page.get_by_role("button").filter(has_text="Electronics").first).to_be_visible()
            chip = page.get_by_role("button").filter(has_text="under $").first
            expect(chip).not_to_contain_text("$120")
            expect(cards.first).to_be_visible()

            name = cards.first.locator(".sw-name").inner_text()
            page.get_by_role("button").filter(has_text="Add to cart").first.click()
            expect(page.get_by_text("Added", exact=False).first).to_be_visible()

            deadline = time.monotonic() + 15
            cart: list[str] = []
            while time.monotonic() < deadline:
                detail = httpx.get(f"{api_url}/users/{shopper['id']}").json()
                cart = [line["name"] for line in detail["cart"]]
                if name in cart:
                    break
                time.sleep(0.3)
            assert name in cart, f"{name!r} not in the cart {cart}"

            page.screenshot(path=str(ARTIFACTS / "chat_ui.png"), full_page=True)
        finally:
            browser.close()
