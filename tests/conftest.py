"""
Fixtures shared by the whole suite: the client the LMS's way, demo courses
and learners in the edx-platform stand-in.
"""
import logging

import pytest
from django.core.cache import cache
from django.test import Client
from edx_django_utils.cache import RequestCache
from opaque_keys.edx.keys import CourseKey

from lms_bridge import registry

LOG_AUDIT = pytest.StashKey()
DEMO_COURSE = "course-v1:edX+DemoX+Demo_Course"
BRIDGE_COURSE = "course-v1:OpenedX+Bridge+2026"
ORG_A_COURSE = "course-v1:OrgA+Math101+2026"


@pytest.fixture(autouse=True)
def _fresh_state():
    """Backends are built per process, throttles count in the cache: each test starts afresh."""
    registry.reset()
    cache.clear()
    RequestCache.clear_all_namespaces()  # the platform's per-request caches: each test is its own "request"
    yield
    registry.reset()
    RequestCache.clear_all_namespaces()


@pytest.fixture
def client():
    """A client that enforces CSRF checks, as the LMS does for session-authenticated requests."""
    return Client(enforce_csrf_checks=True)


def make_course(course_id, modes=("audit",)):
    """Create a published course and its modes in the stand-in LMS."""
    # pylint: disable=import-outside-toplevel
    from common.djangoapps.course_modes.models import CourseMode
    from openedx.core.djangoapps.content.course_overviews.models import CourseOverview

    key = CourseKey.from_string(course_id)
    CourseOverview.objects.get_or_create(id=key, defaults={"display_name": course_id})
    for slug in modes:
        CourseMode.objects.get_or_create(course_id=key, mode_slug=slug, defaults={"mode_display_name": slug})
    return key


@pytest.fixture
def courses(db):  # pylint: disable=unused-argument
    """Two published courses: the demo one offers audit and verified."""
    return {
        DEMO_COURSE: make_course(DEMO_COURSE, ("audit", "verified")),
        BRIDGE_COURSE: make_course(BRIDGE_COURSE, ("audit",)),
    }


@pytest.fixture
def ada(db, django_user_model):  # pylint: disable=unused-argument
    """An active learner."""
    return django_user_model.objects.create_user("ada", "ada@example.com", "pw", is_active=True)


@pytest.fixture
def grace(db, django_user_model):  # pylint: disable=unused-argument
    """A learner whose account is not activated yet."""
    return django_user_model.objects.create_user("grace", "grace@example.com", "pw", is_active=False)


def enrollment_of(user, course_id):
    """(mode, is_active) of a user's enrollment, (None, None) when there is none."""
    from common.djangoapps.student.models import CourseEnrollment  # pylint: disable=import-outside-toplevel

    return CourseEnrollment.enrollment_mode_for_user(user, CourseKey.from_string(course_id))


@pytest.fixture(scope="session")
def live_gunicorn(django_db_setup, django_db_blocker):  # pylint: disable=unused-argument
    """
    gunicorn with 4 workers on 127.0.0.1, on the test database. Needs MariaDB:
    ``make test`` provides it; a bare ``pytest`` on SQLite skips these tests.
    Tests that use it need ``transactional_db`` so the server sees their data.
    """
    from django.db import connection  # pylint: disable=import-outside-toplevel

    from .live import LiveServer  # pylint: disable=import-outside-toplevel

    if connection.vendor != "mysql":
        pytest.skip("the live multi-process tests need MariaDB (make test runs them)")
    server = LiveServer(connection.settings_dict["NAME"])
    yield server
    server.stop()


def pytest_sessionstart(session):  # pylint: disable=unused-argument
    """Start collecting every log line at INFO or above (see tests/log_audit.py)."""
    from .log_audit import HANDLER  # pylint: disable=import-outside-toplevel

    root = logging.getLogger()
    root.addHandler(HANDLER)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def pytest_sessionfinish(session, exitstatus):  # pylint: disable=unused-argument
    """Fail the session if any collected log line holds an email, a secret or a signature."""
    from .log_audit import HANDLER, SERVER_OUTPUT, leaks  # pylint: disable=import-outside-toplevel

    found = leaks(HANDLER.lines + SERVER_OUTPUT)
    session.config.stash[LOG_AUDIT] = (len(HANDLER.lines) + len(SERVER_OUTPUT), found)
    if found:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # pylint: disable=unused-argument
    """Report the log audit."""
    checked, found = config.stash.get(LOG_AUDIT, (0, []))
    if found:
        terminalreporter.write_line(f"LOG AUDIT FAILED: {len(found)} log line(s) leak PII or secrets:", red=True)
        for what, line in found[:20]:
            terminalreporter.write_line(f"  {what}: {line}")
    else:
        terminalreporter.write_line(f"Log audit: {checked} log lines at INFO or above, none with an email, "
                                    "a secret or a signature.")
