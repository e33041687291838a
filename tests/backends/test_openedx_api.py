"""
Tests of the remote Open edX backend, against the fake LMS served on 127.0.0.1.
"""
import time
from datetime import UTC, datetime, timedelta

import pytest
from opaque_keys.edx.keys import CourseKey

from lms_bridge.backends.base import (
    BackendConfig,
    BackendConfigurationError,
    BackendError,
    Learner,
    TransientBackendError,
)
from lms_bridge.backends.openedx_api import OpenEdxApiBackend
from lms_bridge.models import Outcome

from ..fake_openedx import CLIENT_ID, CLIENT_SECRET, FakeOpenEdx, collation_key
from .contract import CONTEXT, COURSE, BackendContract

KEY = CourseKey.from_string(COURSE)


@pytest.fixture
def fake():
    site = FakeOpenEdx()
    yield site
    site.stop()


def make_backend(site, **options):
    options = {"CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "BACKOFF_SECONDS": 0.01,
               "TIMEOUT": [1, 1], **options}
    return OpenEdxApiBackend(BackendConfig(backend="lms_bridge.backends.openedx_api.OpenEdxApiBackend",
                                           base_url=site.url, options=options))


class TestOpenEdxApiBackendContract(BackendContract):
    """The shared backend contract, over HTTP."""

    @pytest.fixture
    def backend(self, fake):
        self.site = fake  # pylint: disable=attribute-defined-outside-init
        return make_backend(fake)

    def create_account(self, email, active=True, username=None):
        self.site.add_account(email, active=active, username=username)

    def lms_confuses(self, email, other):
        return collation_key(email) == collation_key(other)

    def can_hold_case_twins(self):
        # The real accounts API answers 500 for them (see test_case_twins_answer_500): the list form is tested here.
        self.site.several_accounts = "list"
        return True

    # The REST API refuses a full course even with force_enrollment (CourseFullError is raised
    # whatever can_upgrade says); only the in-process backend can force past capacity.
    forced_past_capacity = False

    def create_course(self, course_id, modes=("audit", "verified"), **policy):
        self.site.add_course(course_id, modes, **policy)

    def close_course(self, course):
        self.site.course_policy[str(course)]["enrollment_end"] = datetime.now(UTC) - timedelta(days=1)


class TestOpenEdxApiBackend:
    """Authentication, retries, errors and call counts."""

    @pytest.fixture
    def site(self, fake):
        fake.add_course(COURSE)
        return fake

    def test_token_is_fetched_once_and_shared(self, site):
        """Expected behavior: 100 deliveries' calls share one token."""
        backend = make_backend(site)
        for number in range(100):
            site.add_account(f"learner{number}@example.com")
            backend.set_enrollment(Learner(f"learner{number}@example.com"), KEY, context=CONTEXT)
        assert site.token_requests == 1 and backend.token_requests == 1

    def test_token_refreshed_before_expiry(self, site):
        """Expected behavior: a token close to expiry is replaced before use."""
        site.token_lifetime = 30  # shorter than the 60 s safety margin: every use refreshes
        backend = make_backend(site)
        backend.course_exists(KEY)
        backend.set_enrollment(Learner("nobody@example.com"), KEY, context=CONTEXT)
        assert site.token_requests >= 2

    def test_refresh_once_on_401(self, site):
        """Expected behavior: a revoked token is refreshed once and the call retried."""
        backend = make_backend(site)
        site.add_account("ada@example.com")
        backend.set_enrollment(Learner("ada@example.com"), KEY, context=CONTEXT)
        site.revoke_tokens()
        result = backend.set_enrollment(Learner("ada@example.com"), KEY, mode="verified", context=CONTEXT)
        assert result.outcome == Outcome.MODE_CHANGED
        assert site.token_requests == 2

    def test_wrong_credentials_are_a_configuration_error(self, site):
        """Expected behavior: refused client credentials -> a clear configuration error, no secret in it."""
        backend = make_backend(site, CLIENT_SECRET="wrong-secret")
        with pytest.raises(BackendConfigurationError, match="CLIENT_ID and CLIENT_SECRET") as error:
            backend.course_exists(KEY)
        assert "wrong-secret" not in str(error.value)

    def test_not_staff_is_a_configuration_error(self, site):
        """Expected behavior: 403 -> names the missing permission."""
        site.staff = False
        with pytest.raises(BackendConfigurationError, match="global staff"):
            make_backend(site).set_enrollment(Learner("ada@example.com"), KEY, context=CONTEXT)

    def test_429_honours_retry_after(self, site):
        """Expected behavior: throttled calls wait Retry-After, then succeed."""
        site.throttle = (1, 1)
        backend = make_backend(site)
        started = time.monotonic()
        assert backend.course_exists(KEY) is True
        assert time.monotonic() - started >= 1

    def test_5xx_are_retried_then_transient(self, site):
        """Expected behavior: a few 503s are absorbed; a site that stays down is a transient failure."""
        backend = make_backend(site, MAX_ATTEMPTS=3)
        site.failures = [503, 502]
        assert backend.course_exists(KEY) is True
        site.failures = [503] * 10
        with pytest.raises(TransientBackendError, match="after 3 tries"):
            backend.set_enrollment(Learner("ada@example.com"), CourseKey.from_string("course-v1:X+Y+Z"),
                                   context=CONTEXT)

    def test_slow_replies_time_out(self, site):
        """Expected behavior: replies slower than TIMEOUT are transient failures, bounded in time."""
        site.delay = 0.5
        backend = make_backend(site, TIMEOUT=[0.2, 0.2], MAX_ATTEMPTS=2)
        started = time.monotonic()
        with pytest.raises(TransientBackendError):
            backend.course_exists(CourseKey.from_string("course-v1:Slow+S+1"))
        assert time.monotonic() - started < 5

    def test_unreachable_site_is_transient(self):
        """Expected behavior: nothing listening -> transient."""
        backend = OpenEdxApiBackend(BackendConfig(backend="x.Y", base_url="http://127.0.0.1:9", options={
            "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "TIMEOUT": [0.5, 0.5]}))
        with pytest.raises(TransientBackendError):
            backend.course_exists(KEY)

    def test_other_4xx_is_permanent_with_the_site_message(self, site):
        """Expected behavior: the site's 400 message reaches the audit trail."""
        site.add_account("ada@example.com")
        backend = make_backend(site)
        with pytest.raises(BackendError, match="course mode is not available"):
            backend.set_enrollment(Learner("ada@example.com"), KEY, mode="professional", context=CONTEXT)

    def test_http_calls_per_course(self, site):
        """Expected behavior (figures): existing learner 3 calls, unknown email 2 (plus the course lookup)."""
        backend = make_backend(site)
        site.add_account("ada@example.com")
        backend.course_exists(KEY)
        site.calls.clear()
        backend.set_enrollment(Learner("ada@example.com"), KEY, context=CONTEXT)
        existing = len(site.calls)
        site.calls.clear()
        backend.set_enrollment(Learner("new@example.com"), KEY, context=CONTEXT)
        assert (existing, len(site.calls)) == (3, 2)

    def test_configuration_problems(self):
        """Expected behavior: missing URL or credentials are reported for the system checks."""
        problems = OpenEdxApiBackend.check_configuration(BackendConfig(backend="x.Y", base_url="", options={}))
        assert len(problems) == 3


class TestSameOutcomeAsInProcess:
    """Where the REST API behaves differently, the backend still ends where the in-process one does."""

    @pytest.fixture
    def site(self, fake):
        fake.add_course(COURSE)
        return fake

    def test_an_allowance_without_auto_enroll_is_made_to_auto_enroll(self, site):
        """
        Expected behavior: staff's allowance with auto_enroll false (the LMS
        answers 409 and never updates it) is replaced by one that auto-enrolls:
        outcome allowed, as in-process.
        """
        site.add_allowance("new@example.com", COURSE, auto_enroll=False)
        result = make_backend(site).set_enrollment(Learner("new@example.com"), KEY, context=CONTEXT)
        assert result.outcome == Outcome.ALLOWED
        assert [row["auto_enroll"] for row in site.allowances.values()] == [True]
        again = make_backend(site).set_enrollment(Learner("New@Example.com"), KEY, context=CONTEXT)
        assert again.outcome == Outcome.ALREADY_ALLOWED

    def test_case_twins_answer_500_and_fail_permanently(self, site):
        """
        Expected behavior: two accounts differing only in case make the LMS's
        account lookup answer 500 every time; after the bounded retries that
        is a permanent failure with a clear detail, not a retry for ever.
        """
        site.add_account("Twin@example.com", username="twin1")
        site.add_account("TWIN@example.com", username="twin2")
        with pytest.raises(BackendError) as error:
            make_backend(site, MAX_ATTEMPTS=3).set_enrollment(Learner("twin@example.com"), KEY, context=CONTEXT)
        assert not isinstance(error.value, TransientBackendError)
        assert "answered 500" in error.value.detail and "letter case" in error.value.detail
        assert len(site.api_calls("/api/user/v1/accounts")) == 3

    def test_a_long_retry_after_is_passed_on_not_slept(self, site):
        """Expected behavior: a Retry-After past the retry budget fails at once as transient, carrying the delay."""
        site.throttle = (10, 120)
        started = time.monotonic()
        with pytest.raises(TransientBackendError) as error:
            make_backend(site, MAX_RETRY_SECONDS=5).course_exists(KEY)
        assert error.value.retry_after == 120
        assert time.monotonic() - started < 2

    def test_no_detail_names_the_base_url(self, site):
        """Expected behavior: what a sender may be told never holds the site's (possibly internal) URL."""
        failures = []
        site.failures = [503] * 10
        with pytest.raises(TransientBackendError) as error:
            make_backend(site, MAX_ATTEMPTS=2).course_exists(KEY)
        failures.append(error.value)
        site.failures = []
        site.staff = False
        with pytest.raises(BackendConfigurationError) as error:
            make_backend(site).set_enrollment(Learner("ada@example.com"), KEY, context=CONTEXT)
        failures.append(error.value)
        site.staff = True
        site.add_account("ada@example.com")
        with pytest.raises(BackendError) as error:
            make_backend(site).set_enrollment(Learner("ada@example.com"), KEY, mode="professional", context=CONTEXT)
        failures.append(error.value)
        for failure in failures:
            assert site.url not in failure.detail and "127.0.0.1" not in failure.detail
            assert site.url in str(failure)
