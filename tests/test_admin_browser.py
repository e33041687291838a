"""
The admin console in a real browser (headless Chromium through Selenium):
log in, find a failed delivery, reprocess it.

``make test`` installs Debian's chromium and chromium-driver and sets
LMS_BRIDGE_BROWSER_TESTS=required, so there the test cannot be skipped; a
bare ``pytest`` on a machine without them skips it.
"""
import os
import shutil
import tempfile

import pytest
from django.test import override_settings

from lms_bridge.backends.base import BackendError
from lms_bridge.models import DeliveryStatus, WebhookDelivery

from .backends import fakes
from .conftest import BRIDGE_COURSE, DEMO_COURSE, enrollment_of
from .signing import post_webhook

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REQUIRED = os.environ.get("LMS_BRIDGE_BROWSER_TESTS") == "required"

if not (CHROMIUM and CHROMEDRIVER) and not REQUIRED:
    pytest.skip("chromium and chromedriver are not installed (make test installs them)", allow_module_level=True)


@pytest.fixture
def browser():
    """Headless Chromium, kept off the network but for 127.0.0.1."""
    # pylint: disable=import-outside-toplevel
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and CHROMEDRIVER, "apt-get install chromium chromium-driver: the browser tests are required"
    profile = tempfile.mkdtemp(prefix="lms-bridge-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_support_reprocesses_a_failed_delivery_in_the_browser(live_server, browser, courses, ada, django_user_model):
    """
    Expected behavior: a support user logs in, searches the learner's email,
    sees the partially failed delivery and its failing course, runs
    "Reprocess" and gets a success message; the learner is then enrolled.
    """
    # pylint: disable=import-outside-toplevel
    from django.test import Client
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    def wait_for(selector):
        return WebDriverWait(browser, 20).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))

    django_user_model.objects.create_superuser("support", "support@example.com", "s3cret-pass")
    fakes.SCRIPT.clear()
    fakes.SCRIPT[BRIDGE_COURSE] = BackendError("Course is invitation-only")
    with override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]):
        response = post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE, BRIDGE_COURSE]})
        assert response.json()["success"] is False
        fakes.SCRIPT.clear()

        browser.get(f"{live_server.url}/admin/login/?next=/admin/lms_bridge/webhookdelivery/")
        browser.find_element(By.NAME, "username").send_keys("support")
        browser.find_element(By.NAME, "password").send_keys("s3cret-pass")
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait_for("#result_list")  # logged in, and redirected to the list

        browser.get(f"{live_server.url}/admin/lms_bridge/webhookdelivery/?q=ada%40example.com")
        wait_for("#result_list")
        rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert len(rows) == 1 and "Partially failed" in rows[0].text

        rows[0].find_element(By.CSS_SELECTOR, "th a").click()
        wait_for(".inline-group")
        assert "Course is invitation-only" in browser.find_element(By.TAG_NAME, "body").text

        browser.get(f"{live_server.url}/admin/lms_bridge/webhookdelivery/")
        wait_for("#result_list")
        browser.find_element(By.CSS_SELECTOR, "#result_list tbody input.action-select").click()
        Select(browser.find_element(By.NAME, "action")).select_by_value("reprocess")
        browser.find_element(By.NAME, "index").click()
        message = wait_for("ul.messagelist").text
        if os.environ.get("LMS_BRIDGE_SCREENSHOTS"):
            browser.save_screenshot(os.path.join(os.environ["LMS_BRIDGE_SCREENSHOTS"], "admin-reprocess.png"))
    assert "1 delivery reprocessed successfully." in message
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)
