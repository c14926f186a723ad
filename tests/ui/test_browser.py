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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.db.seed import load_seed
from backend.services.auth import AuthService
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
ADMIN, ADMIN_PASSWORD = "ada", "browser-test-password-1"

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


@dataclass
class Stack:
    """The API on loopback over a seeded SQLite shop, and what a page needs to reach it."""

    api_url: str
    env: dict[str, str]
    data: Path
    processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = (self.data / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append((proc, log))
        return proc

    def streamlit(self, page: str) -> str:
        """Serve ``page`` (a path under the project) on a free port; returns its URL."""
        port = _free_port()
        name = Path(page).stem
        proc = self.start(
            name,
            [str(Path(sys.executable).parent / "streamlit"), "run", page, "--server.headless",
             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", *STREAMLIT_LOOK],
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/_stcore/health", proc, self.data / f"{name}.log")
        return url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
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
    auth = AuthService(db=engine, settings=load_settings(database_url=db_url, data_dir=data))
    auth.create_admin(ADMIN, ADMIN_PASSWORD, "admin")
    engine.dispose()

    api_port = _free_port()
    api_url = f"http://127.0.0.1:{api_port}"
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
    running = Stack(api_url=api_url, env=env, data=data)
    try:
        api = running.start(
            "api",
            [sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(api_port), "--log-level", "warning"],
        )  # fmt: skip
        _wait_http(f"{api_url}/health", api, data / "api.log")
        yield running
    finally:
        for proc, log in reversed(running.processes):
            _stop(proc)
            log.close()


@pytest.fixture(scope="module")
def servers(stack: Stack) -> tuple[str, str]:
    return stack.api_url, stack.streamlit("chat_ui/app.py")


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

            box.fill("start over, electronics")  # more than one page: "Show more" brings more
            box.press("Enter")
            expect(page.locator('[data-testid="stChatMessage"]')).to_have_count(6)
            # Wait for the page to settle before reading cards: earlier answers' cards fold
            # into an expander each, and the reset drops the price chip.
            earlier = page.get_by_text("I showed here")
            expect(earlier).to_have_count(2)
            expect(page.get_by_role("button").filter(has_text="under $")).to_have_count(0)
            first_page = set(cards.locator(".sw-name").all_inner_texts())
            page.get_by_role("button", name="Show more").click()
            expect(page.locator('[data-testid="stChatMessage"]')).to_have_count(8)
            expect(earlier).to_have_count(3)
            expect(cards.first).to_be_visible()
            next_page = set(cards.locator(".sw-name").all_inner_texts())
            assert next_page and not next_page & first_page

            page.screenshot(path=str(ARTIFACTS / "chat_ui.png"), full_page=True)
        finally:
            browser.close()


def _experiment_with_traffic(api_url: str) -> str:
    """A running A/B test with impressions and clicks from a few seed shoppers."""
    created = httpx.post(
        f"{api_url}/experiments",
        json={
            "name": "popularity-vs-hybrid",
            "description": "Does the blended ranking beat plain popularity?",
            "variants": [
                {"name": "control", "share": 0.5, "strategy": "popularity"},
                {"name": "hybrid", "share": 0.5, "strategy": "hybrid"},
            ],
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    users = httpx.get(f"{api_url}/users", params={"limit": 40}, timeout=30).json()["items"]
    for n, user in enumerate(users):
        shown = httpx.get(f"{api_url}/recommend/{user['id']}", params={"top_n": 4}, timeout=60)
        assert shown.status_code == 200, shown.text
        products = shown.json()["recommended_products"]
        if products and n % 3 != 2:
            event = {"user_id": user["id"], "action": "click", "product_id": products[0]["id"],
                     "event_id": f"browser-admin-{n}"}  # fmt: skip
            assert httpx.post(f"{api_url}/events", json=event, timeout=30).status_code < 300
    return str(created.json()["id"])


def test_operator_logs_in_and_sees_the_dashboard(stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    _experiment_with_traffic(stack.api_url)
    subprocess.run(
        [str(Path(sys.executable).parent / "shopwise"), "segments"],
        cwd=PROJECT_ROOT, env=stack.env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    admin_url = stack.streamlit("chat_ui/admin.py")
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(admin_url)
            # The first render imports pandas and Altair: slow on a busy machine.
            expect(page.get_by_text("Shopwise operator console")).to_be_visible(timeout=60_000)

            page.get_by_label("Username").fill(ADMIN)
            page.get_by_label("Password", exact=True).fill("not the password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Wrong username or password.")).to_be_visible()

            page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text(f"Signed in as {ADMIN}")).to_be_visible()
            expect(page.get_by_role("tab", name="Overview")).to_be_visible()
            expect(page.locator('[data-testid="health-card"]').first).to_be_visible()
            expect(page.locator(".sw-kpi").first).to_contain_text("Products")
            expect(page.locator("input[type=password]")).to_have_count(0)  # the form is gone
            assert ADMIN_PASSWORD not in page.content()
            page.screenshot(path=str(ARTIFACTS / "admin_overview.png"), full_page=True)

            page.get_by_role("tab", name="Experiments").click()
            expect(page.get_by_text("popularity-vs-hybrid").first).to_be_visible()
            expect(page.locator(".sw-verdict").first).to_be_visible()
            expect(page.get_by_role("button", name="Promote variant")).to_be_visible()
            page.wait_for_timeout(1500)  # let the Vega charts draw before the screenshot
            page.screenshot(path=str(ARTIFACTS / "admin_experiments.png"), full_page=True)

            for tab, shown in [
                ("Analytics", page.get_by_text("last 14 days")),
                ("Segments", page.get_by_text("UTC", exact=False)),
                ("Prompts", page.get_by_role("button", name="Run preview")),
                ("Evaluation", page.get_by_text("Hybrid test NDCG@10")),
            ]:
                page.get_by_role("tab", name=tab).click()
                expect(shown.first).to_be_visible()
                page.wait_for_timeout(1000)
                page.screenshot(path=str(ARTIFACTS / f"admin_{tab.lower()}.png"), full_page=True)

            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        finally:
            browser.close()
