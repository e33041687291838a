"""
Routing: courses of org OrgA go to a remote Open edX site over REST (the fake
LMS on 127.0.0.1), every other course to the in-process backend; and the
backend check command.
"""
import io
import re
import time

import pytest
from common.djangoapps.student.models import CourseEnrollment
from django.core.management import CommandError, call_command
from django.test import override_settings
from opaque_keys.edx.keys import CourseKey

from .conftest import DEMO_COURSE, ORG_A_COURSE, enrollment_of
from .fake_openedx import CLIENT_ID, CLIENT_SECRET, FakeOpenEdx
from .signing import post_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def site_a():
    site = FakeOpenEdx()
    site.add_course(ORG_A_COURSE, ("audit", "verified"))
    site.add_account("ada@example.com")
    backends = [
        {"BACKEND": "lms_bridge.backends.openedx_api.OpenEdxApiBackend", "BASE_URL": site.url,
         "SELECTOR_REGEX": r"course-v1:OrgA\+",
         "OPTIONS": {"CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "BACKOFF_SECONDS": 0.01,
                     "TIMEOUT": [1, 1], "MAX_ATTEMPTS": 2}},
        {"BACKEND": "lms_bridge.backends.openedx.OpenEdxBackend", "SELECTOR_REGEX": r"course-v1:"},
    ]
    with override_settings(LMS_BRIDGE_BACKENDS=backends):
        yield site
    site.stop()


def test_one_delivery_two_sites(client, courses, ada, site_a):
    """Expected behavior: the OrgA course is enrolled on site A over REST, the demo course in this LMS."""
    response = post_webhook(client, {"email": "ada@example.com", "courseIds": [ORG_A_COURSE, DEMO_COURSE],
                                     "mode": "verified"})
    assert response.status_code == 200, response.content
    assert [r["outcome"] for r in response.json()["results"]] == ["enrolled", "enrolled"]
    assert site_a.enrollments[("ada", ORG_A_COURSE)] == {"mode": "verified", "is_active": True}
    assert enrollment_of(ada, DEMO_COURSE) == ("verified", True)
    assert not CourseEnrollment.objects.filter(course_id=ORG_A_COURSE).exists()


def test_unknown_course_on_site_a_is_400(client, courses, ada, site_a):
    """Expected behavior: a course site A does not have is refused before anything is done."""
    response = post_webhook(client, {"email": "ada@example.com",
                                     "courseIds": [DEMO_COURSE, "course-v1:OrgA+Nope+2026"]})
    assert response.status_code == 400
    assert response.json()["message"] == "Course course-v1:OrgA+Nope+2026 does not exist"
    assert enrollment_of(ada, DEMO_COURSE) == (None, None)


def test_site_down_is_503_and_the_retry_completes(client, courses, ada, site_a):
    """Expected behavior: site A failing -> 503 for the sender; its retry finishes without redoing this LMS's course."""
    site_a.failures = [503] * 4
    payload = {"email": "ada@example.com", "courseIds": [DEMO_COURSE, ORG_A_COURSE]}
    now = int(time.time())
    response = post_webhook(client, payload, event_id="msg_down", timestamp=now)
    assert response.status_code == 503 and response.headers["Retry-After"]
    site_a.failures = []
    retry = post_webhook(client, payload, event_id="msg_down", timestamp=now)
    assert retry.status_code == 200 and retry.json()["success"] is True
    assert site_a.enrollments[("ada", ORG_A_COURSE)]["is_active"] is True


def test_check_command(site_a):
    """Expected behavior: a table with OK for both backends; exit status 0."""
    out = io.StringIO()
    call_command("lms_bridge_check_backends", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["backend", "base", "URL", "selector", "status"]
    assert len(lines) == 3 and lines[2].endswith("OK")
    assert site_a.url in lines[1]
    # The token's claims (PyJWT): who the service user is, that it is staff, how long the token lasts.
    assert re.search(r"OK \(lms_bridge, global staff, token valid 3[0-9]{3} s\)$", lines[1]), lines[1]


def test_check_command_reports_failures(site_a):
    """Expected behavior: a service user that is not staff -> the reason, and a non-zero exit."""
    site_a.staff = False
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 backend"):
        call_command("lms_bridge_check_backends", stdout=out)
    assert "lms_bridge, who is not global staff (JWT claim administrator: false)" in out.getvalue()
    assert "manage_user lms_bridge" in out.getvalue()


def test_worker_processes_share_one_token_through_the_cache(courses, site_a):
    """
    Expected behavior: a second backend built from the same settings (another worker process
    of the LMS, sharing its Django cache) uses the token the first fetched; a refused token is
    dropped from the cache for everyone.
    """
    from django.core.cache import cache  # pylint: disable=import-outside-toplevel

    from lms_bridge.backends.openedx_api import OpenEdxApiBackend  # pylint: disable=import-outside-toplevel
    from lms_bridge.registry import get_all_backends  # pylint: disable=import-outside-toplevel

    cache.clear()
    config = next(b for b in get_all_backends() if isinstance(b, OpenEdxApiBackend)).configuration
    first, second = OpenEdxApiBackend(config), OpenEdxApiBackend(config)
    first.course_exists(CourseKey.from_string(ORG_A_COURSE))
    second.course_exists(CourseKey.from_string(ORG_A_COURSE))
    assert site_a.token_requests == 1 and second.token_requests == 0
    assert not [key for key in cache._cache if CLIENT_SECRET in str(key)]  # pylint: disable=protected-access
    site_a.revoke_tokens()
    second.course_exists(CourseKey.from_string("course-v1:OrgA+Other+2026"))  # 401 -> refresh
    third = OpenEdxApiBackend(config)
    third.course_exists(CourseKey.from_string(ORG_A_COURSE))
    assert site_a.token_requests == 2 and third.token_requests == 0


def test_one_token_for_100_deliveries(client, courses, site_a):
    """Expected behavior (figures): 100 webhook deliveries to site A cost 1 token request and 4 calls each at most."""
    for number in range(100):
        site_a.add_account(f"learner{number}@example.com")
    site_a.calls.clear()
    for number in range(100):
        response = post_webhook(client, {"email": f"learner{number}@example.com", "courseIds": [ORG_A_COURSE]})
        assert response.status_code == 200
    assert site_a.token_requests == 1
    # Per delivery: account, enrollment read, enrollment write; the course lookup is cached for a minute.
    assert len(site_a.calls) == 100 * 3 + 1


def test_answers_never_name_the_remote_site(client, courses, ada, site_a):
    """
    Expected behavior: a site that is down, and a service user that is not
    staff, give the sender 503 with Retry-After and a reply that never names
    the site's URL; the operator gets an ERROR log line and the audit row the
    full story.
    """
    from lms_bridge.models import EnrollmentOperation  # pylint: disable=import-outside-toplevel

    payload = {"email": "ada@example.com", "courseIds": [ORG_A_COURSE]}
    site_a.failures = [503] * 4
    down = post_webhook(client, payload)
    assert down.status_code == 503 and site_a.url.encode() not in down.content
    site_a.failures = []
    site_a.staff = False
    site_a.courses["course-v1:OrgA+Other+2026"] = ["audit"]
    misconfigured = post_webhook(client, payload)
    assert misconfigured.status_code == 503, misconfigured.content
    assert misconfigured.headers["Retry-After"]
    assert site_a.url.encode() not in misconfigured.content
    assert misconfigured.json()["results"][0]["outcome"] == "retry"
    operation = EnrollmentOperation.objects.filter(outcome="retry").last()
    assert "global staff" in operation.error and site_a.url in operation.error


def test_a_long_retry_after_reaches_the_sender(client, courses, ada, site_a):
    """Expected behavior: the LMS's Retry-After of 120 s (past the retry budget) is the sender's Retry-After."""
    site_a.throttle = (10, 120)
    response = post_webhook(client, {"email": "ada@example.com", "courseIds": [ORG_A_COURSE]})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "120"


def test_case_twins_on_site_a_fail_that_pair_for_good(client, courses, ada, site_a):
    """Expected behavior: the LMS answering 500 for one learner fails that pair (200, success false), not 503s."""
    site_a.add_account("Twin@example.com", username="twin1")
    site_a.add_account("TWIN@example.com", username="twin2")
    response = post_webhook(client, {"email": "twin@example.com", "courseIds": [ORG_A_COURSE, DEMO_COURSE]})
    assert response.status_code == 200, response.content
    outcomes = [result["outcome"] for result in response.json()["results"]]
    assert outcomes == ["failed", "allowed"]
