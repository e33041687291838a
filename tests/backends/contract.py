"""
The contract every enrollment backend must pass.

A backend's test class inherits ``BackendContract`` and provides the
``backend`` fixture plus two hooks that set up the LMS behind it
(``create_account`` and ``create_course``). The contract then drives the
backend only through its public API (``course_exists``, ``offers_mode``,
``get_enrollment``, ``set_enrollment``) and checks the outcomes and the
resulting state, so the in-process backend and a remote one are held to the
same promises: idempotence, never a downgrade, allowances for learners
without an active account, and clean unenrollment.
"""
import pytest
from opaque_keys.edx.keys import CourseKey

from lms_bridge.backends.base import EnrollmentState, Learner, OperationContext
from lms_bridge.models import Outcome

COURSE = "course-v1:Contract+C101+2026"
CONTEXT = OperationContext(source="contract", delivery="00000000-0000-0000-0000-000000000000", event_id="msg_c")


class BackendContract:
    """
    Inherit, and define ``backend`` (a fixture), ``create_account`` and ``create_course``.

    ``lms_confuses(a, b)``: whether the LMS's lookups take email ``a`` for ``b``
    (MySQL's collations ignore accents, and utf8mb4_unicode_ci letter width too;
    SQLite ignores neither, and a lookalike email is then simply another learner).
    """

    def lms_confuses(self, email, other):
        """Whether the LMS's own lookups match ``email`` to ``other``."""
        raise NotImplementedError

    def create_account(self, email, active=True, username=None):
        """Create an LMS account with this email."""
        raise NotImplementedError

    def create_course(self, course_id, modes=("audit", "verified")):
        """Create a published course offering ``modes``."""
        raise NotImplementedError

    @pytest.fixture
    def course(self, backend):  # pylint: disable=unused-argument
        self.create_course(COURSE)
        return CourseKey.from_string(COURSE)

    def enroll(self, backend, email, course, mode=None):
        return backend.set_enrollment(Learner(email=email), course, active=True, mode=mode, context=CONTEXT)

    def unenroll(self, backend, email, course):
        return backend.set_enrollment(Learner(email=email), course, active=False, context=CONTEXT)

    def test_course_exists(self, backend, course):
        """Expected behavior: a published course exists; an unknown one does not."""
        assert backend.course_exists(course) is True
        assert backend.course_exists(CourseKey.from_string("course-v1:Contract+Nope+2026")) is False

    def test_existing_courses(self, backend, course):
        """Expected behavior: of several courses, exactly the existing ones are returned."""
        unknown = CourseKey.from_string("course-v1:Contract+Nope+2026")
        assert backend.existing_courses([course, unknown]) == {course}

    def test_offers_mode(self, backend, course):
        """Expected behavior: offered modes are accepted, others are not."""
        assert backend.offers_mode(course, "verified") is True
        assert backend.offers_mode(course, "professional") is False

    def test_enroll_active_learner(self, backend, course):
        """Expected behavior: enrolled in the default mode, then already_enrolled (idempotent)."""
        self.create_account("learner@example.com")
        assert self.enroll(backend, "learner@example.com", course).outcome == Outcome.ENROLLED
        state = backend.get_enrollment("learner@example.com", course)
        assert (state.is_active, state.mode) == (True, "audit")
        assert self.enroll(backend, "learner@example.com", course).outcome == Outcome.ALREADY_ENROLLED

    def test_enroll_in_mode_and_upgrade(self, backend, course):
        """Expected behavior: an explicit mode is applied; asking for another mode changes it."""
        self.create_account("learner@example.com")
        self.enroll(backend, "learner@example.com", course)
        result = self.enroll(backend, "learner@example.com", course, mode="verified")
        assert result.outcome == Outcome.MODE_CHANGED
        assert backend.get_enrollment("learner@example.com", course).mode == "verified"

    def test_no_mode_never_downgrades(self, backend, course):
        """Expected behavior: enroll without a mode keeps a verified enrollment verified."""
        self.create_account("learner@example.com")
        self.enroll(backend, "learner@example.com", course, mode="verified")
        assert self.enroll(backend, "learner@example.com", course).outcome == Outcome.ALREADY_ENROLLED
        assert backend.get_enrollment("learner@example.com", course).mode == "verified"

    def test_reactivation_keeps_the_mode(self, backend, course):
        """Expected behavior: re-enrolling an unenrolled verified learner without a mode restores verified."""
        self.create_account("learner@example.com")
        self.enroll(backend, "learner@example.com", course, mode="verified")
        self.unenroll(backend, "learner@example.com", course)
        assert self.enroll(backend, "learner@example.com", course).outcome == Outcome.ENROLLED
        state = backend.get_enrollment("learner@example.com", course)
        assert (state.is_active, state.mode) == (True, "verified")

    def test_email_is_case_insensitive(self, backend, course):
        """Expected behavior: the account is found whatever the case of the email."""
        self.create_account("Mixed.Case@Example.com")
        assert self.enroll(backend, "mixed.case@example.COM", course).outcome == Outcome.ENROLLED
        assert backend.get_enrollment("MIXED.CASE@example.com", course).is_active is True

    def test_unknown_email_is_allowed(self, backend, course):
        """Expected behavior: allowed, then already_allowed; nothing enrolled yet."""
        assert self.enroll(backend, "nobody@example.com", course).outcome == Outcome.ALLOWED
        assert self.enroll(backend, "Nobody@Example.com", course).outcome == Outcome.ALREADY_ALLOWED
        state = backend.get_enrollment("nobody@example.com", course)
        assert state == EnrollmentState(allowed=True)

    def test_inactive_account_is_allowed(self, backend, course):
        """Expected behavior: an account that is not active gets an allowance, not an enrollment."""
        self.create_account("inactive@example.com", active=False)
        assert self.enroll(backend, "inactive@example.com", course).outcome == Outcome.ALLOWED
        state = backend.get_enrollment("inactive@example.com", course)
        assert state.allowed is True and state.is_active is None

    def test_unenroll(self, backend, course):
        """Expected behavior: unenrolled, then not_enrolled (idempotent)."""
        self.create_account("learner@example.com")
        self.enroll(backend, "learner@example.com", course)
        assert self.unenroll(backend, "learner@example.com", course).outcome == Outcome.UNENROLLED
        assert backend.get_enrollment("learner@example.com", course).is_active is False
        assert self.unenroll(backend, "learner@example.com", course).outcome == Outcome.NOT_ENROLLED

    def test_unenroll_removes_the_allowance(self, backend, course):
        """Expected behavior: unenrolling an email with only an allowance removes it."""
        self.enroll(backend, "nobody@example.com", course)
        assert self.unenroll(backend, "nobody@example.com", course).outcome == Outcome.UNENROLLED
        assert backend.get_enrollment("nobody@example.com", course).allowed is False

    def test_unenroll_unknown_is_a_no_op(self, backend, course):
        """Expected behavior: nothing to undo -> not_enrolled."""
        assert self.unenroll(backend, "nobody@example.com", course).outcome == Outcome.NOT_ENROLLED

    @pytest.mark.parametrize("lookalike", ["ada@exämple.com", "ada@ｅxample.com"])
    def test_a_lookalike_email_never_enrolls_the_learner(self, backend, course, lookalike):
        """
        Expected behavior: an email differing from an account's in accents or
        letter width never enrolls that account (refused where the LMS's
        lookups would confuse them), and its unenroll never removes them.
        """
        self.create_account("ada@example.com")
        result = self.enroll(backend, lookalike, course)
        confused = self.lms_confuses(lookalike, "ada@example.com")
        assert result.outcome == (Outcome.REFUSED if confused else Outcome.ALLOWED)
        assert backend.get_enrollment("ada@example.com", course).is_active is None
        self.enroll(backend, "ada@example.com", course)
        assert self.unenroll(backend, lookalike, course).outcome in (Outcome.NOT_ENROLLED, Outcome.UNENROLLED)
        assert backend.get_enrollment("ada@example.com", course).is_active is True

    def test_a_lookalike_email_never_touches_another_allowance(self, backend, course):
        """Expected behavior: unenrolling a lookalike email keeps the other email's allowance."""
        self.enroll(backend, "nobody@example.com", course)
        assert self.unenroll(backend, "nobody@exämple.com", course).outcome == Outcome.NOT_ENROLLED
        assert backend.get_enrollment("nobody@example.com", course).allowed is True
        result = self.enroll(backend, "nobody@exämple.com", course)
        confused = self.lms_confuses("nobody@exämple.com", "nobody@example.com")
        assert result.outcome == (Outcome.REFUSED if confused else Outcome.ALLOWED)
        assert backend.get_enrollment("nobody@example.com", course).allowed is True

    def test_several_accounts_for_one_email_are_refused(self, backend, course):
        """Expected behavior: two accounts whose emails differ only in case, neither exact -> refused, nobody enrolled."""
        if not self.can_hold_case_twins():
            pytest.skip("this database cannot hold two emails that differ only in case")
        self.create_account("Twin@example.com", username="twin1")
        self.create_account("TWIN@example.com", username="twin2")
        result = self.enroll(backend, "twin@example.com", course)
        assert result.outcome == Outcome.REFUSED and "Several accounts" in result.detail

    def can_hold_case_twins(self):
        """Whether the LMS behind the backend can hold two accounts whose emails differ only in case."""
        return True
