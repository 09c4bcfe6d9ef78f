"""The status page (`GET /` of the API) in a real headless Chromium: a 3-node swarm shows 3
members, a put on another node appears without a reload, a killed node turns dead; behind
`--api-token` the page asks for the token and shows no data without it. Saves screenshots
(RUMOR_ARTIFACTS, default /tmp/rumor-artifacts)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import rumor_binary, wait_until

webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (CI installs it)")
from selenium.webdriver.common.by import By  # noqa: E402

ARTIFACTS = Path(os.environ.get("RUMOR_ARTIFACTS", "/tmp/rumor-artifacts"))


@pytest.fixture
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromedriver are needed: apt-get install chromium chromium-driver", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def member_states(driver):
    rows = driver.find_elements(By.CSS_SELECTOR, "#members tbody tr")
    return {row.get_attribute("data-member"): row.get_attribute("data-state") for row in rows}


def screenshot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    print(f"ARTIFACT {path}")


def test_the_page_shows_the_swarm_live(swarm, browser):
    a = swarm.agent("page-a", profile="local")
    b = swarm.agent("page-b", profile="local", join=[a.address], extra=["--tag", "role=reviewer"])
    c = swarm.agent("page-c", profile="local", join=[a.address])
    wait_until(lambda: len(a.members()) == 3, 10, "a sees all three")

    browser.get(f"http://{a.api}/")
    wait_until(lambda: member_states(browser) == {"page-a": "alive", "page-b": "alive", "page-c": "alive"}, 10,
               "the page lists three alive members")
    assert browser.find_element(By.ID, "node-name").text == "page-a"
    assert "role=reviewer" in browser.find_element(By.ID, "members").text
    wait_until(lambda: browser.find_element(By.ID, "live").text == "live", 10, "the page follows the watch")

    # A write on another node appears without a reload (the watch pushes it).
    marker = browser.execute_script("window.notReloaded = true; return window.notReloaded;")
    assert marker
    subprocess.run([rumor_binary(), "put", "deploy/version", "v42", "--api", b.api], check=True, timeout=10)
    wait_until(lambda: "deploy/version" in browser.find_element(By.ID, "changes").text, 10, "the put shows up")
    assert "v42" in browser.find_element(By.ID, "changes").text
    wait_until(lambda: browser.find_element(By.ID, "state-keys").text == "1", 5, "the key count follows")
    screenshot(browser, "status-page.png")

    c.kill9()
    # Lifeguard lets a suspicion last up to 6x its minimum while few confirm it (docs/performance.md, "Measured": 26 s bound).
    wait_until(lambda: member_states(browser).get("page-c") in ("dead", "left"), 30, "the killed node turns dead")
    assert browser.execute_script("return window.notReloaded === true;"), "the page reloaded"
    screenshot(browser, "status-page-dead-member.png")


def test_behind_a_token_the_page_asks_for_it_and_shows_nothing_without_it(swarm, browser):
    a = swarm.agent("token-a", extra=["--api-token", "s3cret-token"])
    subprocess.run([rumor_binary(), "put", "private/key", "private-value", "--api", a.api, "--api-token", "s3cret-token"],
                   check=True, timeout=10)
    browser.get(f"http://{a.api}/")
    wait_until(lambda: browser.find_element(By.ID, "token-form").is_displayed(), 10, "the page asks for the token")
    assert not browser.find_element(By.ID, "dashboard").is_displayed()
    assert "token-a" not in browser.page_source and "private" not in browser.page_source

    field = browser.find_element(By.ID, "token")
    field.send_keys("wrong")
    browser.find_element(By.CSS_SELECTOR, "#token-entry button").click()
    wait_until(lambda: "refused" in browser.find_element(By.ID, "token-error").text, 10, "a wrong token is refused")
    assert "token-a" not in browser.page_source

    field.clear()
    field.send_keys("s3cret-token")
    browser.find_element(By.CSS_SELECTOR, "#token-entry button").click()
    wait_until(lambda: member_states(browser) == {"token-a": "alive"}, 10, "the right token shows the swarm")
    assert browser.find_element(By.ID, "state-keys").text == "1"
    screenshot(browser, "status-page-token.png")
