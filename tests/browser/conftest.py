"""Browser tests: the portal served by uvicorn on a loopback port (in a thread) against a fresh
migrated database, driven by Playwright in Debian's headless Chromium (/usr/bin/chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from ops.services import ServiceSettings, ensure_up
from portal.app import create_app
from portal.settings import PortalSettings
from portal.views import LOCAL
from storage.roles import dsn_for
from tests.harness import serve
from tests.integration.test_portal.fixtures import World, create_database, drop_database, populate, secret_file

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]



@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, PortalSettings]]:
    services = ServiceSettings()
    ensure_up(services)
    dbname, dsn = create_database(services)
    try:
        w = populate(dbname, dsn, datetime.now(timezone.utc).astimezone(LOCAL).date())
        settings = PortalSettings(data_dir=services.data_dir, pg_host=services.pg_host, pg_port=services.pg_port,
                                  pg_db=dbname, portal_secret_file=secret_file(tmp_path_factory.mktemp("b")),
                                  portal_sse_poll_s=0.3, portal_cookie_secure=False)  # http on loopback
        yield w, settings
    finally:
        drop_database(services, dbname)


@pytest.fixture(scope="session")
def base_url(world: tuple[World, PortalSettings]) -> Iterator[str]:
    _, settings = world
    app = create_app(settings, dsn_for("nxem_portal", settings))
    with serve(app) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


#: Records every Content-Security-Policy violation of the page (injected by the browser, so
#: the policy itself does not block it) in ``window.__cspViolations``.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.documentURI}`));
"""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    context.add_init_script(CSP_RECORDER)
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


def csp_violations(page: Page) -> list[str]:
    """The CSP violations of the page shown now (the recorder restarts on each navigation)."""
    found: list[str] = page.evaluate("window.__cspViolations || []")
    return found


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
