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
from datetime import UTC, datetime, timedelta

import pytest
from opaque_keys.edx.keys import CourseKey

from lms_bridge.backends.base import EnrollmentState, Learner, OperationContext
from lms_bridge.formats import EnrollmentRequest
from lms_bridge.models import Outcome

COURSE = "course-v1:Contract+C101+2026"
CONTEXT = OperationContext(source="contract", delivery="00000000-0000-0000-0000-000000000000", event_id="msg_c")
FORCED = OperationContext(source="contract", delivery="00000000-0000-0000-0000-000000000001", force_enrollment=True)
LAST_YEAR = datetime.now(UTC) - timedelta(days=365)
YESTERDAY = datetime.now(UTC) - timedelta(days=1)


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

    def create_course(self, course_id, modes=("audit", "verified"), **policy):
        """
        Create a published course offering ``modes``; ``policy`` may hold
        ``invitation_only``, ``enrollment_start``, ``enrollment_end`` and
        ``max_student_enrollments_allowed``, as the LMS's CourseOverview has them.
        """
        raise NotImplementedError

    # Whether the LMS lets a forced enrollment past a full course (the REST API does not: see the remote backend).
    forced_past_capacity = True

    @pytest.fixture
    def course(self, backend):  # pylint: disable=unused-argument
        self.create_course(COURSE)
        return CourseKey.from_string(COURSE)

    def enroll(self, backend, email, course, mode=None, context=CONTEXT):
        return backend.set_enrollment(Learner(email=email), course, active=True, mode=mode, context=context)

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
        """Expected behavior: two accounts whose emails differ only in case, neither exact -> refused."""
        if not self.can_hold_case_twins():
            pytest.skip("this database cannot hold two emails that differ only in case")
        self.create_account("Twin@example.com", username="twin1")
        self.create_account("TWIN@example.com", username="twin2")
        result = self.enroll(backend, "twin@example.com", course)
        assert result.outcome == Outcome.REFUSED and "Several accounts" in result.detail

    def can_hold_case_twins(self):
        """Whether the LMS behind the backend can hold two accounts whose emails differ only in case."""
        return True

    # The one enrollment policy (FORCE_ENROLLMENT), the same on every backend.

    def policy_course(self, course_id, **policy):
        self.create_course(course_id, **policy)
        return CourseKey.from_string(course_id)

    @pytest.mark.parametrize("policy,reason", [
        ({"enrollment_start": LAST_YEAR, "enrollment_end": YESTERDAY}, "has closed"),
        ({"enrollment_start": datetime.now(UTC) + timedelta(days=30)}, "has not opened yet"),
        ({"invitation_only": True}, "invitation-only"),
    ])
    def test_closed_and_invitation_only_courses(self, backend, policy, reason):
        """Expected behavior: refused with the reason unless forced; forced -> enrolled (and allowed for no account)."""
        course = self.policy_course("course-v1:Contract+Closed+2026", **policy)
        self.create_account("learner@example.com")
        result = self.enroll(backend, "learner@example.com", course)
        assert result.outcome == Outcome.REFUSED and reason in result.detail and "FORCE_ENROLLMENT" in result.detail
        assert backend.get_enrollment("learner@example.com", course).is_active is None
        assert self.enroll(backend, "learner@example.com", course, context=FORCED).outcome == Outcome.ENROLLED
        refused = self.enroll(backend, "nobody@example.com", course)
        assert refused.outcome == Outcome.REFUSED and reason in refused.detail
        assert backend.get_enrollment("nobody@example.com", course).allowed is False
        assert self.enroll(backend, "nobody@example.com", course, context=FORCED).outcome == Outcome.ALLOWED

    def test_an_allowance_is_an_invitation(self, backend):
        """Expected behavior: a learner allowed into an invite-only course (as staff invite) is enrolled unforced."""
        course = self.policy_course("course-v1:Contract+Invite+2026", invitation_only=True)
        self.enroll(backend, "invited@example.com", course, context=FORCED)
        self.create_account("invited@example.com")
        assert self.enroll(backend, "invited@example.com", course).outcome == Outcome.ENROLLED

    def test_a_full_course(self, backend):
        """Expected behavior: at capacity a new learner is refused ("full"); forced, enrolled where the LMS can."""
        course = self.policy_course("course-v1:Contract+Full+2026", max_student_enrollments_allowed=1)
        self.create_account("first@example.com")
        self.create_account("second@example.com")
        assert self.enroll(backend, "first@example.com", course).outcome == Outcome.ENROLLED
        result = self.enroll(backend, "second@example.com", course)
        assert result.outcome == Outcome.REFUSED and "is full" in result.detail
        forced = self.enroll(backend, "second@example.com", course, context=FORCED)
        if self.forced_past_capacity:
            assert forced.outcome == Outcome.ENROLLED
        else:
            assert forced.outcome == Outcome.REFUSED and "is full" in forced.detail

    def test_a_learner_who_had_an_enrollment_is_reenrolled_unforced(self, backend):
        """Expected behavior: reactivating an existing enrollment row is no new enrollment: no access check."""
        course = self.policy_course("course-v1:Contract+Again+2026")
        self.create_account("learner@example.com")
        self.enroll(backend, "learner@example.com", course, mode="verified")
        self.unenroll(backend, "learner@example.com", course)
        self.close_course(course)
        result = self.enroll(backend, "learner@example.com", course)
        assert result.outcome == Outcome.ENROLLED
        assert backend.get_enrollment("learner@example.com", course).mode == "verified"

    def test_no_mode_asked_gets_a_mode_the_course_offers(self, backend):
        """Expected behavior: audit where offered, honor where that is the default, refused where there is none."""
        honor = self.policy_course("course-v1:Contract+Honor+2026", modes=("honor", "verified"))
        verified_only = self.policy_course("course-v1:Contract+Verified+2026", modes=("verified",))
        self.create_account("learner@example.com")
        assert self.enroll(backend, "learner@example.com", honor).outcome == Outcome.ENROLLED
        assert backend.get_enrollment("learner@example.com", honor).mode == "honor"
        result = self.enroll(backend, "learner@example.com", verified_only)
        assert result.outcome == Outcome.REFUSED and "no default mode" in result.detail and "verified" in result.detail
        assert backend.get_enrollment("learner@example.com", verified_only).is_active is None
        assert self.enroll(backend, "learner@example.com", verified_only, mode="verified").outcome == Outcome.ENROLLED
        assert backend.get_enrollment("learner@example.com", verified_only).mode == "verified"

    def close_course(self, course):
        """Close the course's enrollment window (after the fact)."""
        raise NotImplementedError

    # The bulk reads: what ``settled`` says must be what ``set_enrollment`` would do.

    def test_settled_answers_only_what_set_enrollment_would(self, backend, course):
        """
        Expected behavior: for every kind of learner state, a settled answer is the
        outcome set_enrollment gives, and set_enrollment then changes nothing; a
        pair with work to do is never settled.
        """
        other = self.create_course_key("course-v1:Contract+Other+2026")
        self.create_account("enrolled@example.com")
        self.create_account("verified@example.com")
        self.create_account("inactive@example.com", active=False)
        self.create_account("fresh@example.com")
        self.enroll(backend, "enrolled@example.com", course)
        self.enroll(backend, "verified@example.com", course, mode="verified")
        self.enroll(backend, "allowed@example.com", course)
        self.enroll(backend, "inactive@example.com", course)
        requests = [
            EnrollmentRequest("enrolled@example.com", course),                     # already enrolled
            EnrollmentRequest("ENROLLED@example.com", course, mode="audit"),       # the same, asked in a mode
            EnrollmentRequest("verified@example.com", course, mode="audit"),       # a mode change: work
            EnrollmentRequest("verified@example.com", other),                      # a new enrollment: work
            EnrollmentRequest("fresh@example.com", course),                        # work
            EnrollmentRequest("allowed@example.com", course),                      # already allowed
            EnrollmentRequest("inactive@example.com", course),                     # already allowed
            EnrollmentRequest("nobody@example.com", course),                       # work (a new allowance)
            EnrollmentRequest("nobody@example.com", course, action="unenroll"),    # not enrolled
            EnrollmentRequest("enrolled@example.com", other, action="unenroll"),   # not enrolled
            EnrollmentRequest("allowed@example.com", course, action="unenroll"),   # work (remove the allowance)
            EnrollmentRequest("enrolled@example.com", course, action="unenroll"),  # work
            EnrollmentRequest("enrolled@exämple.com", course),                     # a lookalike: never settled wrongly
        ]
        answers = backend.settled(requests, CONTEXT)
        assert len(answers) == len(requests)
        must_work = {2, 3, 4, 7, 10, 11}
        assert not [index for index in must_work if answers[index] is not None], answers
        settled = [index for index, answer in enumerate(answers) if answer is not None]
        assert settled, "a backend that reads ahead settles the pairs with nothing to do"
        for index in settled:
            request = requests[index]
            before = backend.get_enrollment(request.email, request.course_key)
            result = backend.set_enrollment(Learner(email=request.email), request.course_key,
                                            active=request.action == "enroll", mode=request.mode, context=CONTEXT)
            assert result.outcome == answers[index].outcome, (request, answers[index], result)
            assert backend.get_enrollment(request.email, request.course_key) == before, request

    def test_supported_modes_agree_with_offers_mode(self, backend, course):
        pairs = {(course, "audit"), (course, "verified"), (course, "professional")}
        assert backend.supported_modes(pairs) == {pair for pair in pairs if backend.offers_mode(*pair)}
        assert backend.supported_modes(pairs) == {(course, "audit"), (course, "verified")}

    def create_course_key(self, course_id):
        self.create_course(course_id)
        return CourseKey.from_string(course_id)
