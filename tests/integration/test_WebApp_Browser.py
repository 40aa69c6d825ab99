"""The web portal in a real browser: headless Debian Chromium driven by selenium (tests/servers/chromium.sh
installs it), signing in at the real test OpenID Connect provider's pages.

Chromium is told to accept the test servers' certificates (``--ignore-certificate-errors``: the grid's CA
and the provider's CA are throw-away ones it does not know); TLS itself is real. With
``DIRAC_PORTAL_SCREENSHOTS=<dir>`` the pages shown in docs/portal.md are saved there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dirac.Core.Base.DB import disposeEngines
from dirac.WebApp.DB.SessionDB import SessionDB

from .conftest import environmentOf
from .idp import USERS
from .portal import runningPortalGrid
from .test_WebApp_Pages import submit

SCRIPT = Path(__file__).parents[1] / "servers" / "chromium.sh"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--ignore-certificate-errors", "--window-size=1400,1000"]


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[test]')")
    found = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True, timeout=900)
    if found.returncode != 0:
        _unavailable(f"Chromium is not available: {found.stderr[-1000:]}")
    chromium, chromedriver = found.stdout.split()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def portal(tmp_path_factory, oidcProvider):
    with runningPortalGrid(tmp_path_factory.mktemp("portalbrowser"), oidcProvider) as started:
        yield started


@pytest.fixture(scope="module")
def jobs(portal) -> dict[str, int]:
    return {"alice": submit(portal, "alice", "alice-browser-job"), "bob": submit(portal, "bob", "bob-browser-job")}


def screenshot(driver, name: str) -> None:
    target = os.environ.get("DIRAC_PORTAL_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(target) / f"{name}.png"))


def by(kind: str, value: str):
    from selenium.webdriver.common.by import By

    return getattr(By, kind), value


def wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def signInAtProvider(driver, portal, login: str) -> None:
    """From the portal's login page through the provider's sign-in and consent pages back to the portal."""
    from selenium.webdriver.support.expected_conditions import staleness_of

    def clickAndLeave(element) -> None:  # the next page, not the one clicked on (a slow machine may lag)
        element.click()
        wait(driver, staleness_of(element))

    clickAndLeave(driver.find_element(*by("ID", "login-TestIdP")))
    for _ in range(4):
        wait(driver, lambda d: d.find_elements(*by("TAG_NAME", "button")) or d.current_url.startswith(portal.root))
        if driver.current_url.startswith(portal.root):
            return
        fields = driver.find_elements(*by("NAME", "login"))
        if fields:
            fields[0].send_keys(login)
            driver.find_element(*by("NAME", "password")).send_keys(USERS[login][0])
        clickAndLeave(driver.find_element(*by("CSS_SELECTOR", "button[type=submit]")))
    wait(driver, lambda d: d.current_url.startswith(portal.root))


def test_portal_in_a_real_browser(browser, portal, jobs):
    driver = browser
    # unauthenticated: only the login page
    driver.get(portal.root + "/jobs")
    assert "/DIRAC/login" in driver.current_url
    assert driver.find_elements(*by("ID", "login-TestIdP"))
    assert not driver.find_elements(*by("LINK_TEXT", "Job Monitor"))
    screenshot(driver, "portal-login")

    # sign in at the real provider, choose the group
    signInAtProvider(driver, portal, "alice")
    assert "/DIRAC/group" in driver.current_url
    driver.find_element(*by("CSS_SELECTOR", "input[value=dirac_user]")).click()
    driver.find_element(*by("ID", "choose-group")).click()
    wait(driver, lambda d: "/DIRAC/jobs" in d.current_url)
    assert driver.find_element(*by("ID", "identity")).text == "alice@dirac_user"

    # the Job Monitor lists the job submitted through the API, not bob's
    assert driver.find_elements(*by("ID", f"job-{jobs['alice']}"))
    assert not driver.find_elements(*by("ID", f"job-{jobs['bob']}"))
    screenshot(driver, "portal-jobs")

    # bob's job is not actionable: the service refuses both the page and the kill
    driver.get(f"{portal.root}/jobs/{jobs['bob']}")
    assert "bob-browser-job" not in driver.page_source
    assert driver.find_element(*by("ID", "error-message")).text

    # kill alice's job from the list (the page asks for a confirmation)
    driver.get(portal.root + "/jobs")
    driver.find_element(*by("CSS_SELECTOR", f"#job-{jobs['alice']} input.job-select")).click()
    driver.find_element(*by("ID", "action-kill")).click()
    wait(driver, lambda d: _alert(d)).accept()
    wait(driver, lambda d: "Kill sent" in d.page_source)
    driver.get(f"{portal.root}/jobs/{jobs['alice']}")
    assert driver.find_element(*by("ID", "job-status")).text == "Killed"
    screenshot(driver, "portal-job")

    # a form whose CSRF token is not the session's is refused
    driver.get(portal.root + "/jobs")
    driver.execute_script("document.querySelector('#job-actions input[name=_csrf]').value = 'forged';"
                          "document.querySelector('#job-actions input.job-select').checked = true;")
    driver.find_element(*by("ID", "action-reschedule")).click()
    wait(driver, lambda d: "CSRF check failed" in d.page_source)

    driver.get(portal.root + "/whoami")
    assert driver.find_element(*by("ID", "who-group")).text == "dirac_user"
    screenshot(driver, "portal-whoami")

    # sign out: the session is gone, the pages need a sign-in again
    driver.find_element(*by("ID", "logout")).click()
    wait(driver, lambda d: "You have signed out" in d.page_source)
    driver.get(portal.root + "/jobs")
    assert "/DIRAC/login" in driver.current_url

    # sign in again (the provider remembers alice), then let the session expire on the server
    signInAtProvider(driver, portal, "alice")
    if "/DIRAC/group" in driver.current_url:
        driver.find_element(*by("ID", "choose-group")).click()
    wait(driver, lambda d: "/DIRAC/jobs" in d.current_url)
    cookie = driver.get_cookie("dirac_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    from tornado.web import decode_signed_value

    secret = (portal.grid.instance.root / "etc" / "webapp.secret").read_bytes().strip()
    sessionID = decode_signed_value(secret, "dirac_session", cookie["value"].strip('"')).decode()
    with environmentOf(portal.grid.instance):
        db = SessionDB()
        try:
            db.expireSession(sessionID)
        finally:
            disposeEngines(db.url)
    driver.get(portal.root + "/pilots")
    assert "/DIRAC/login" in driver.current_url
    assert "Your session has expired" in driver.find_element(*by("ID", "login-message")).text


def _alert(driver):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return False


def test_plot_renders_in_the_browser(browser, portal, jobs):
    """The Job Monitor's plots load as images (after the sign-in of the previous test or a new one)."""
    driver = browser
    driver.get(portal.root + "/jobs")
    if "/DIRAC/login" in driver.current_url:
        signInAtProvider(driver, portal, "alice")
        if "/DIRAC/group" in driver.current_url:
            driver.find_element(*by("ID", "choose-group")).click()
        wait(driver, lambda d: "/DIRAC/jobs" in d.current_url)
    image = driver.find_element(*by("ID", "plot-status"))
    wait(driver, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    assert driver.execute_script("return arguments[0].naturalWidth", image) > 100
