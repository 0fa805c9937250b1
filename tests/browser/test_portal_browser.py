"""The portal in a real headless Chromium: live alert board and acknowledgement by an
inspector; an enterprise user's site charts -- all under the portal's strict
Content-Security-Policy, with no violation on any page; and the policy blocking what it must
(inline script and style, being framed). Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from playwright.sync_api import Page, expect

from portal.settings import PortalSettings
from tests.integration.test_portal.fixtures import PASSWORD, World, open_alert

from .conftest import ARTIFACTS, csp_violations, sign_in

pytestmark = pytest.mark.integration


def test_inspector_sees_a_new_alert_live_and_acknowledges_it(page: Page, base_url: str,
                                                             world: tuple[World, PortalSettings]) -> None:
    w, _ = world
    sign_in(page, base_url, "insp", PASSWORD)
    expect(page).to_have_url(f"{base_url}/board")
    expect(page.locator(f"#alert-{w.alert_b}")).to_be_visible()
    expect(page.locator("#live")).to_have_text("live")
    rows_before = page.locator("#alerts tbody tr").count()

    # a worker opens a new alert: it must appear without a reload
    new_id = open_alert(w.admin_dsn, w.ent_a, w.site_a, "browser_live_rule", datetime.now(timezone.utc))
    row = page.locator(f"#alert-{new_id}")
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("browser_live_rule")
    expect(row).to_contain_text("中卫")
    assert page.locator("#alerts tbody tr").count() == rows_before + 1
    page.screenshot(path=str(ARTIFACTS / "inspector-board-live.png"), full_page=True)
    assert csp_violations(page) == []  # the board, its script and the live stream under the CSP

    row.get_by_role("link", name="Acknowledge…").click()
    expect(page).to_have_url(f"{base_url}/alerts/{new_id}")
    page.fill("#ack-form textarea[name=note]", "Phoned the duty engineer; sensor check scheduled.")
    page.click("#ack-form button[type=submit]")
    expect(page.locator("#alert-status")).to_contain_text("acknowledged")
    expect(page.locator("table.transitions")).to_contain_text("Phoned the duty engineer")
    expect(page.locator("#ack-form")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "inspector-alert-acknowledged.png"), full_page=True)
    assert csp_violations(page) == []

    # back on the board the row shows the acknowledgement
    page.goto(f"{base_url}/board")
    expect(page.locator(f"#alert-{new_id} .status")).to_contain_text("acknowledged")
    assert csp_violations(page) == []


def test_alert_evidence_page_shows_the_standard_and_chart(page: Page, base_url: str,
                                                          world: tuple[World, PortalSettings]) -> None:
    w, _ = world
    sign_in(page, base_url, "insp", PASSWORD)
    page.goto(f"{base_url}/alerts/{w.alert_b}")
    expect(page.locator(".evidence")).to_contain_text("GB 21343-2023")
    expect(page.locator(".evidence")).to_contain_text("E / output")
    expect(page.locator(".chart-box svg")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "inspector-alert-evidence.png"), full_page=True)
    assert csp_violations(page) == []


def test_enterprise_user_signs_in_and_sees_their_charts(page: Page, base_url: str,
                                                        world: tuple[World, PortalSettings]) -> None:
    w, _ = world
    sign_in(page, base_url, "ent-a", PASSWORD)
    expect(page).to_have_url(f"{base_url}/sites")
    links = page.locator("table.sites tbody a")
    expect(links).to_have_count(1)  # only their own site
    expect(page.locator("table.sites")).not_to_contain_text("宁东")
    links.first.click()
    expect(page).to_have_url(f"{base_url}/sites/{w.site_a}")
    for chart in ("#chart-readings", "#chart-energy", "#chart-pue"):
        expect(page.locator(f"{chart} svg")).to_be_visible()
    expect(page.locator("#chart-pue")).to_contain_text("limit 1.2")
    expect(page.locator("#chart-energy svg rect[fill]").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "enterprise-site-charts.png"), full_page=True)
    assert csp_violations(page) == []  # the SVG charts
    # another enterprise's site is not there for them
    response = page.goto(f"{base_url}/sites/{w.site_b}")
    assert response is not None and response.status == 404
    # and CSV export of what they see downloads
    page.goto(f"{base_url}/sites/{w.site_a}")
    with page.expect_download() as dl:
        page.get_by_role("link", name="daily energy").click()
    assert dl.value.suggested_filename == "nxem-energy.csv"


@pytest.mark.parametrize("path", ["/login", "/board", "/overview", "/sites", "/alerts", "/static/portal.css"])
def test_every_page_carries_the_strict_policy(page: Page, base_url: str, path: str) -> None:
    sign_in(page, base_url, "insp", PASSWORD)
    expect(page).to_have_url(f"{base_url}/board")
    response = page.goto(f"{base_url}{path}")
    assert response is not None and response.status == 200
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    if not path.startswith("/static"):
        assert csp_violations(page) == []


def test_the_policy_blocks_injected_inline_script_and_style(page: Page, base_url: str) -> None:
    """What an injection would add -- an inline event handler, a script element, a style
    attribute -- does not run: the browser reports each as a violation."""
    page.goto(f"{base_url}/login")
    page.evaluate("""() => {
        const box = document.createElement("div");
        box.innerHTML = '<img src="/static/none.png" onerror="window.__ran = 1">'
                      + '<p id="styled" style="color: rgb(255, 0, 0)">x</p>';
        document.body.append(box);
        const s = document.createElement("script");
        s.textContent = "window.__ran = 2";
        document.body.append(s);
    }""")
    page.wait_for_function("window.__cspViolations.length >= 3")
    assert page.evaluate("window.__ran") is None
    assert page.evaluate("getComputedStyle(document.getElementById('styled')).color") != "rgb(255, 0, 0)"
    directives = {v.split(" ")[0] for v in csp_violations(page)}
    assert {"script-src-attr", "script-src-elem", "style-src-attr"} <= directives, csp_violations(page)


def test_the_portal_cannot_be_framed(page: Page, base_url: str) -> None:
    """A page of another origin framing the sign-in form (clickjacking) gets nothing; a framed
    form of its own shows, so the check can tell the two apart. ``set_content`` returns after
    the load event, which waits for both frames."""
    page.set_content(f'<iframe id="portal" src="{base_url}/login"></iframe>'
                     '<iframe id="own" srcdoc="<input name=username>"></iframe>')
    expect(page.frame_locator("#own").locator("input[name=username]")).to_have_count(1)
    expect(page.frame_locator("#portal").locator("input[name=username]")).to_have_count(0)
