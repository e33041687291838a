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
import time
from pathlib import Path

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
    driver.downloads = tempfile.mkdtemp(prefix="lms-bridge-downloads-")
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": driver.downloads})
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
    shutil.rmtree(driver.downloads, ignore_errors=True)


def screenshot(browser, name):
    """Keep what the page looked like: test-artifacts/screenshots/ (or LMS_BRIDGE_SCREENSHOTS)."""
    folder = Path(os.environ.get("LMS_BRIDGE_SCREENSHOTS") or Path(__file__).resolve().parents[1] / "test-artifacts"
                  / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(folder / f"{name}.png"))


def follow(browser, element):
    """Click what leads to another page, and wait until that page replaced this one.

    The admin's pages share their ids (#content, #result_list): a lookup straight after the click can
    otherwise find the page being left, and the element goes stale under the test. The page being left
    is marked in its window object, which a new document does not have. (Waiting for the clicked element
    to go stale is not enough: Chromium may answer "node does not belong to the document" meanwhile.)
    """
    # pylint: disable=import-outside-toplevel
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("window.lmsbLeaving = true;")
    element.click()
    WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script("return !window.lmsbLeaving && document.readyState === 'complete';"))


def log_in(browser, live_server, username, password, next_url):
    from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel

    browser.get(f"{live_server.url}/admin/login/?next={next_url}")
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))


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

        log_in(browser, live_server, "support", "s3cret-pass", "/admin/lms_bridge/webhookdelivery/")
        wait_for("#result_list")  # logged in, and redirected to the list

        browser.get(f"{live_server.url}/admin/lms_bridge/webhookdelivery/?q=ada%40example.com")
        wait_for("#result_list")
        rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert len(rows) == 1 and "Partially failed" in rows[0].text

        follow(browser, rows[0].find_element(By.CSS_SELECTOR, "th a"))
        wait_for(".inline-group")
        assert "Course is invitation-only" in browser.find_element(By.TAG_NAME, "body").text

        browser.get(f"{live_server.url}/admin/lms_bridge/webhookdelivery/")
        wait_for("#result_list")
        browser.find_element(By.CSS_SELECTOR, "#result_list tbody input.action-select").click()
        Select(browser.find_element(By.NAME, "action")).select_by_value("reprocess")
        follow(browser, browser.find_element(By.NAME, "index"))
        message = wait_for("ul.messagelist").text
        screenshot(browser, "admin-reprocess")
    assert "1 delivery reprocessed successfully." in message
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)


@pytest.mark.django_db(transaction=True)
def test_support_staff_tour_dashboard_search_reprocess_export(live_server, browser, courses, ada, django_user_model):
    """
    Expected behavior: staff with the view, reprocess and export permissions (not a superuser) open the
    dashboard, follow its "failed" bar to the filtered list, search the learner's email (the invalid
    delivery is found too), open the failed delivery (status, learner, what the sender was told),
    reprocess it, and export the operations as CSV; staff without the permissions see none of it.
    """
    # pylint: disable=import-outside-toplevel
    from django.contrib.auth.models import Permission
    from django.test import Client
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    def wait_for(selector):
        return WebDriverWait(browser, 20).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))

    support = django_user_model.objects.create_user("helpdesk", "helpdesk@example.com", "s3cret-pass", is_staff=True)
    support.user_permissions.set(Permission.objects.filter(content_type__app_label="lms_bridge"))
    django_user_model.objects.create_user("intern", "intern@example.com", "s3cret-pass", is_staff=True)
    fakes.SCRIPT.clear()
    fakes.SCRIPT[BRIDGE_COURSE] = BackendError("Course is invitation-only")
    with override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]):
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE, BRIDGE_COURSE]})
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": ["not-a-course-key"]})
        fakes.SCRIPT.clear()

        log_in(browser, live_server, "helpdesk", "s3cret-pass", "/admin/lms_bridge/webhookdelivery/dashboard/")
        wait_for("#lmsb-per-day")
        assert "Course is invitation-only" in browser.find_element(By.ID, "lmsb-course-failures").text
        assert "shop" in browser.find_element(By.ID, "lmsb-sources").text
        screenshot(browser, "admin-dashboard")
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#lmsb-per-day a.seg[title*='failed']"))
        wait_for("#result_list")
        rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert len(rows) == 1 and "Partially failed" in rows[0].text

        search = browser.find_element(By.ID, "searchbar")
        search.clear()
        browser.get(f"{live_server.url}/admin/lms_bridge/webhookdelivery/")
        wait_for("#searchbar").send_keys("ada@example.com")
        follow(browser, browser.find_element(By.CSS_SELECTOR, "#changelist-search input[type=submit]"))
        wait_for("#result_list")
        rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert sorted("Invalid" in row.text for row in rows) == [False, True]
        screenshot(browser, "admin-search")

        failed = next(row for row in rows if "Partially failed" in row.text)
        follow(browser, failed.find_element(By.CSS_SELECTOR, "th a"))
        summary = wait_for("fieldset").text
        assert "ada@example.com" in summary and "200" in summary and "Course is invitation-only" in summary
        assert not browser.find_elements(By.NAME, "_save") and not browser.find_elements(By.CSS_SELECTOR,
                                                                                          ".deletelink")
        screenshot(browser, "admin-delivery")

        browser.get(f"{live_server.url}/admin/lms_bridge/webhookdelivery/?status__exact=partially_failed")
        wait_for("#result_list tbody input.action-select").click()
        Select(browser.find_element(By.NAME, "action")).select_by_value("reprocess")
        follow(browser, browser.find_element(By.NAME, "index"))
        assert "1 delivery reprocessed successfully." in wait_for("ul.messagelist").text

        browser.get(f"{live_server.url}/admin/lms_bridge/enrollmentoperation/?outcome__exact=enrolled")
        wait_for("a.lmsb-export").click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not [f for f in os.listdir(browser.downloads) if f.endswith(".csv")]:
            time.sleep(0.1)
        files = [f for f in os.listdir(browser.downloads) if f.endswith(".csv")]
        assert files, "no CSV was downloaded"
        exported = Path(browser.downloads, files[0]).read_text(encoding="utf-8").splitlines()
        assert exported[0].startswith("created,delivery,source,email,course_id")
        assert len(exported) == 3 and all(",enrolled," in line for line in exported[1:])

        browser.delete_all_cookies()
        log_in(browser, live_server, "intern", "s3cret-pass", "/admin/")
        wait_for("#user-tools")  # logged in: the index, not the login page
        assert "lms_bridge" not in browser.find_element(By.ID, "content").text.lower()
        browser.get(f"{live_server.url}/admin/lms_bridge/webhookdelivery/dashboard/")
        assert "403" in browser.title or "Forbidden" in browser.find_element(By.TAG_NAME, "body").text
        screenshot(browser, "admin-no-permission")
    assert enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)


@pytest.mark.django_db(transaction=True)
def test_a_running_delivery_shows_its_progress_and_chunks_in_the_browser(live_server, browser, courses, ada,
                                                                        django_user_model):
    """Expected behavior: half of a delivery on Celery done -> "2 of 4 pairs done", one chunk done, one pending."""
    # pylint: disable=import-outside-toplevel
    from django.contrib.auth.models import Permission
    from django.test import Client
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    from lms_bridge.processing import process_chunk, start_delivery

    viewer = django_user_model.objects.create_user("watcher", "watcher@example.com", "s3cret-pass", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(content_type__app_label="lms_bridge",
                                                          codename__startswith="view"))
    response = post_webhook(Client(), {"learners": [{"email": "ada@example.com"}, {"email": "new@example.com"}],
                                       "courseIds": [DEMO_COURSE, BRIDGE_COURSE]}, source="cohorts-async")
    delivery = WebhookDelivery.objects.get(uuid=response.json()["delivery"])
    with override_settings(LMS_BRIDGE_CHUNK_PAIRS=2):
        assert start_delivery(delivery.pk) == [0, 1]
        process_chunk(delivery.pk, 0, task_id="task-of-chunk-0")
    log_in(browser, live_server, "watcher", "s3cret-pass", f"/admin/lms_bridge/webhookdelivery/{delivery.pk}/change/")
    summary = WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "fieldset"))).text
    assert "2 of 4 pairs done (enrolled: 2)" in summary and "Processing" in summary
    chunks = browser.find_element(By.ID, "chunks-group").text
    assert "task-of-chunk-0" in chunks and "Done" in chunks and "Pending" in chunks
    screenshot(browser, "admin-progress")
