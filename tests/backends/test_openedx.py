"""
Tests of the in-process Open edX backend, against the edx-platform stand-in.
"""
import ast
from pathlib import Path

import pytest
from common.djangoapps.student.models import (
    CourseEnrollment,
    CourseEnrollmentAllowed,
    ManualEnrollmentAudit,
    retired_email_for,
)
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone
from opaque_keys.edx.keys import CourseKey
from openedx.core.djangoapps.content.course_overviews.models import CourseOverview
from openedx_filters.filters import PipelineStep

from lms_bridge.backends.base import BackendConfig, BackendError, Learner
from lms_bridge.backends.openedx import OpenEdxBackend
from lms_bridge.models import Outcome

from ..conftest import make_course
from .contract import CONTEXT, COURSE, BackendContract

REFUSE_STEP = "tests.backends.test_openedx.RefuseEnrollment"
REFUSE_UNENROLL_STEP = "tests.backends.test_openedx.RefuseUnenrollment"


class RefuseEnrollment(PipelineStep):
    """An openedx-filters pipeline step that refuses every enrollment (as an operator's plugin may)."""

    def run_filter(self, user, course_key, mode):  # pylint: disable=arguments-differ,unused-argument
        from openedx_filters.learning.filters import CourseEnrollmentStarted  # pylint: disable=import-outside-toplevel

        raise CourseEnrollmentStarted.PreventEnrollment("Enrollment closed by policy")


class RefuseUnenrollment(PipelineStep):
    """A pipeline step that refuses every unenrollment."""

    def run_filter(self, enrollment):  # pylint: disable=arguments-differ,unused-argument
        from openedx_filters.learning.filters import CourseUnenrollmentStarted  # pylint: disable=import-outside-toplevel

        raise CourseUnenrollmentStarted.PreventUnenrollment("Certificate already issued")


@pytest.mark.django_db
class TestOpenEdxBackendContract(BackendContract):
    """The shared backend contract, in-process."""

    @pytest.fixture
    def backend(self):
        return OpenEdxBackend(BackendConfig(backend="lms_bridge.backends.openedx.OpenEdxBackend"))

    def lms_confuses(self, email, other):
        # The database's own verdict (its collation), asked independently of the backend.
        with connection.cursor() as cursor:
            cursor.execute("SELECT email FROM auth_user WHERE email = %s "
                           "UNION ALL SELECT email FROM student_courseenrollmentallowed WHERE email = %s",
                           [email, email])
            return other in {row[0] for row in cursor.fetchall()}

    def create_account(self, email, active=True, username=None):
        get_user_model().objects.create_user(username or email.split("@")[0].replace(".", "_"), email, "pw",
                                             is_active=active)

    def create_course(self, course_id, modes=("audit", "verified"), **policy):
        make_course(course_id, modes)
        if policy:
            CourseOverview.objects.filter(id=CourseKey.from_string(course_id)).update(**policy)

    def close_course(self, course):
        CourseOverview.objects.filter(id=course).update(enrollment_end=timezone.now() - timezone.timedelta(days=1))


@pytest.mark.django_db
class TestOpenEdxBackend:
    """Behaviour specific to running inside the LMS."""

    @pytest.fixture
    def backend(self):
        make_course(COURSE, ("audit", "verified"))
        return OpenEdxBackend(BackendConfig(backend="lms_bridge.backends.openedx.OpenEdxBackend"))

    key = CourseKey.from_string(COURSE)

    def test_audit_rows_name_the_delivery(self, backend, ada):
        """Expected behavior: each change writes a ManualEnrollmentAudit with no acting user and a clear reason."""
        backend.set_enrollment(Learner("ada@example.com"), self.key, context=CONTEXT)
        backend.set_enrollment(Learner("ada@example.com"), self.key, active=False, context=CONTEXT)
        backend.set_enrollment(Learner("new@example.com"), self.key, context=CONTEXT)
        rows = list(ManualEnrollmentAudit.objects.order_by("id").values_list("enrolled_email", "state_transition"))
        assert rows == [
            ("ada@example.com", "from unenrolled to enrolled"),
            ("ada@example.com", "from enrolled to unenrolled"),
            ("new@example.com", "from unenrolled to allowed to enroll"),
        ]
        reason = ManualEnrollmentAudit.objects.first().reason
        assert reason == (
            "lms_bridge webhook from source 'contract', delivery 00000000-0000-0000-0000-000000000000 (event msg_c)"
        )

    def test_no_audit_row_when_nothing_changes(self, backend, ada):
        """Expected behavior: already_enrolled writes no audit row."""
        backend.set_enrollment(Learner("ada@example.com"), self.key, context=CONTEXT)
        backend.set_enrollment(Learner("ada@example.com"), self.key, context=CONTEXT)
        assert ManualEnrollmentAudit.objects.count() == 1

    def test_the_platform_api_downgrades_and_the_backend_does_not(self, backend, ada):
        """
        Expected behavior: CourseEnrollment.enroll(user, key) with no mode resets
        a verified learner to the default mode (the trap), while the backend,
        asked without a mode, leaves the learner verified.
        """
        CourseEnrollment.enroll(ada, self.key, mode="verified")
        CourseEnrollment.enroll(ada, self.key)
        assert CourseEnrollment.enrollment_mode_for_user(ada, self.key) == ("audit", True)
        CourseEnrollment.enroll(ada, self.key, mode="verified")
        result = backend.set_enrollment(Learner("ada@example.com"), self.key, context=CONTEXT)
        assert result.outcome == Outcome.ALREADY_ENROLLED
        assert CourseEnrollment.enrollment_mode_for_user(ada, self.key) == ("verified", True)

    def test_retired_email_is_refused(self, backend, django_user_model):
        """Expected behavior: an email whose account was retired gets no allowance."""
        django_user_model.objects.create_user("retired", retired_email_for("gone@example.com"), "pw")
        result = backend.set_enrollment(Learner("gone@example.com"), self.key, context=CONTEXT)
        assert result.outcome == Outcome.REFUSED and "retired" in result.detail
        assert not CourseEnrollmentAllowed.objects.exists()

    @override_settings(OPEN_EDX_FILTERS_CONFIG={
        "org.openedx.learning.course.enrollment.started.v1": {"pipeline": [REFUSE_STEP], "fail_silently": False}})
    def test_enrollment_filter_refusal(self, backend, ada):
        """Expected behavior: a CourseEnrollmentStarted filter that refuses -> outcome refused, no enrollment."""
        result = backend.set_enrollment(Learner("ada@example.com"), self.key, context=CONTEXT)
        assert result.outcome == Outcome.REFUSED and "Enrollment closed by policy" in result.detail
        assert CourseEnrollment.enrollment_mode_for_user(ada, self.key) == (None, None)

    def test_unenrollment_filter_refusal_keeps_everything(self, backend, ada):
        """Expected behavior: a refused unenrollment leaves the enrollment and the allowance in place."""
        backend.set_enrollment(Learner("ada@example.com"), self.key, context=CONTEXT)
        CourseEnrollmentAllowed.objects.create(email="ada@example.com", course_id=self.key, auto_enroll=True)
        config = {"org.openedx.learning.course.unenrollment.started.v1": {
            "pipeline": [REFUSE_UNENROLL_STEP], "fail_silently": False}}
        with override_settings(OPEN_EDX_FILTERS_CONFIG=config):
            result = backend.set_enrollment(Learner("ada@example.com"), self.key, active=False, context=CONTEXT)
        assert result.outcome == Outcome.REFUSED
        assert CourseEnrollment.is_enrolled(ada, self.key)
        assert CourseEnrollmentAllowed.objects.filter(email="ada@example.com").exists()

    def test_activation_enrolls_from_the_allowance(self, backend, grace):
        """Expected behavior: the inactive learner's allowance becomes an enrollment when the account is activated."""
        backend.set_enrollment(Learner("grace@example.com"), self.key, mode="verified", context=CONTEXT)
        assert not CourseEnrollment.is_enrolled(grace, self.key)
        grace.is_active = True
        grace.save()
        # The LMS enrolls in the default mode: the detail told the sender to send again for 'verified'.
        assert CourseEnrollment.enrollment_mode_for_user(grace, self.key) == ("audit", True)
        assert CourseEnrollmentAllowed.objects.get(email="grace@example.com").user == grace

    def test_allowed_detail_mentions_the_lost_mode(self, backend):
        """Expected behavior: asking for a mode for an unknown email says the mode will not be applied on activation."""
        result = backend.set_enrollment(Learner("new@example.com"), self.key, mode="verified", context=CONTEXT)
        assert result.outcome == Outcome.ALLOWED and "'verified'" in result.detail

    def test_existing_allowance_without_auto_enroll_is_upgraded(self, backend):
        """Expected behavior: an allowance created by staff without auto_enroll is switched to auto_enroll."""
        CourseEnrollmentAllowed.objects.create(email="new@example.com", course_id=self.key, auto_enroll=False)
        result = backend.set_enrollment(Learner("new@example.com"), self.key, context=CONTEXT)
        assert result.outcome == Outcome.ALLOWED
        assert CourseEnrollmentAllowed.objects.get(email="new@example.com").auto_enroll is True

    def test_ambiguous_accounts_are_refused(self, backend, django_user_model):
        """Expected behavior: two accounts differing only in case, neither exact -> refused; exact -> enrolled."""
        django_user_model.objects.create_user("one", "Twin@example.com", "pw")
        django_user_model.objects.create_user("two", "TWIN@example.com", "pw")
        result = backend.set_enrollment(Learner("twin@example.com"), self.key, context=CONTEXT)
        assert result.outcome == Outcome.REFUSED and "Several accounts" in result.detail
        with pytest.raises(BackendError):
            backend.get_enrollment("twin@example.com", self.key)
        result = backend.set_enrollment(Learner("TWIN@example.com"), self.key, context=CONTEXT)
        assert result.outcome == Outcome.ENROLLED

    def test_expired_modes_follow_the_option(self, backend):
        """Expected behavior: an expired mode is not offered unless INCLUDE_EXPIRED_MODES is on."""
        from common.djangoapps.course_modes.models import CourseMode  # pylint: disable=import-outside-toplevel
        from django.utils import timezone  # pylint: disable=import-outside-toplevel

        yesterday = timezone.now() - timezone.timedelta(days=1)
        CourseMode.objects.filter(mode_slug="verified").update(expiration_datetime=yesterday)
        assert backend.offers_mode(self.key, "verified") is False
        lenient = OpenEdxBackend(BackendConfig(backend="x.Y", options={"INCLUDE_EXPIRED_MODES": True}))
        assert lenient.offers_mode(self.key, "verified") is True


def test_only_the_openedx_backend_imports_edx_platform():
    """
    Expected behavior: no module of lms_bridge but backends/openedx.py imports
    edx-platform, and that one only inside functions (lazily).
    """
    platform_roots = ("common", "openedx", "lms", "cms", "xmodule")
    package = Path(__file__).resolve().parents[2] / "lms_bridge"
    offenders = []
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        top_level = set(tree.body)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(name.split(".")[0] in platform_roots for name in names):
                allowed = path.name == "openedx.py" and path.parent.name == "backends" and node not in top_level
                if not allowed:
                    offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert offenders == []


@pytest.mark.django_db
class TestPlatformFidelity:
    """What the in-process backend relies on, as the platform does it."""

    @pytest.fixture
    def backend(self):
        make_course(COURSE, ("audit", "verified"))
        return OpenEdxBackend(BackendConfig(backend="lms_bridge.backends.openedx.OpenEdxBackend"))

    key = CourseKey.from_string(COURSE)

    def test_an_account_without_a_profile_fails_clearly(self, backend, ada):
        """
        Expected behavior: the platform's enroll() reads user.profile.name; for
        an account with no profile the backend says so (a permanent failure)
        and leaves no half-made enrollment behind.
        """
        from common.djangoapps.student.models import UserProfile  # pylint: disable=import-outside-toplevel

        UserProfile.objects.filter(user=ada).delete()
        ada.refresh_from_db()
        with pytest.raises(BackendError) as error, transaction.atomic():
            # As processing calls it: in a transaction of its own (here a savepoint of the test's).
            backend.set_enrollment(Learner("ada@example.com"), self.key, context=CONTEXT)
        assert "has no profile" in error.value.detail
        assert not CourseEnrollment.objects.filter(user=ada).exists()

    def test_transition_constants_are_the_platforms(self, backend):
        """
        Expected behavior: removing an allowance is audited with the platform's
        own ALLOWEDTOENROLL_TO_UNENROLLED, whose value (an upstream quirk) is
        'from allowed to enroll to enrolled'.
        """
        backend.set_enrollment(Learner("new@example.com"), self.key, context=CONTEXT)
        backend.set_enrollment(Learner("new@example.com"), self.key, active=False, context=CONTEXT)
        transitions = list(ManualEnrollmentAudit.objects.order_by("id").values_list("state_transition", flat=True))
        assert transitions == ["from unenrolled to allowed to enroll", "from allowed to enroll to enrolled"]
