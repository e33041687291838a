"""Stand-in for the LMS's enrollment models (common/djangoapps/student/models/course_enrollment.py)."""
from common.djangoapps.course_modes.models import CourseMode, default_course_mode
from django.conf import settings
from django.db import models
from django.db.models import Q
from opaque_keys.edx.django.models import CourseKeyField
from opaque_keys.edx.keys import CourseKey
from openedx.core.djangoapps.content.course_overviews.models import CourseOverview
from openedx_filters.learning.filters import CourseEnrollmentStarted, CourseUnenrollmentStarted

__all__ = [
    "ALLOWEDTOENROLL_TO_ENROLLED",
    "ALLOWEDTOENROLL_TO_UNENROLLED",
    "ENROLLED_TO_ENROLLED",
    "ENROLLED_TO_UNENROLLED",
    "UNENROLLED_TO_ALLOWEDTOENROLL",
    "UNENROLLED_TO_ENROLLED",
    "UNENROLLED_TO_UNENROLLED",
    "AlreadyEnrolledError",
    "CourseEnrollment",
    "CourseEnrollmentAllowed",
    "CourseEnrollmentException",
    "CourseFullError",
    "EnrollmentClosedError",
    "EnrollmentNotAllowed",
    "ManualEnrollmentAudit",
    "NonExistentCourseError",
    "UnenrollmentNotAllowed",
]

UNENROLLED_TO_ALLOWEDTOENROLL = "from unenrolled to allowed to enroll"
ALLOWEDTOENROLL_TO_ENROLLED = "from allowed to enroll to enrolled"
ENROLLED_TO_ENROLLED = "from enrolled to enrolled"
ENROLLED_TO_UNENROLLED = "from enrolled to unenrolled"
UNENROLLED_TO_ENROLLED = "from unenrolled to enrolled"
ALLOWEDTOENROLL_TO_UNENROLLED = "from allowed to enroll to unenrolled"
UNENROLLED_TO_UNENROLLED = "from unenrolled to unenrolled"
TRANSITION_STATES = [(state, state) for state in (
    UNENROLLED_TO_ALLOWEDTOENROLL, ALLOWEDTOENROLL_TO_ENROLLED, ENROLLED_TO_ENROLLED, ENROLLED_TO_UNENROLLED,
    UNENROLLED_TO_ENROLLED, ALLOWEDTOENROLL_TO_UNENROLLED, UNENROLLED_TO_UNENROLLED,
)]


class CourseEnrollmentException(Exception):
    pass


class NonExistentCourseError(CourseEnrollmentException):
    pass


class EnrollmentClosedError(CourseEnrollmentException):
    pass


class CourseFullError(CourseEnrollmentException):
    pass


class AlreadyEnrolledError(CourseEnrollmentException):
    pass


class EnrollmentNotAllowed(CourseEnrollmentException):
    pass


class UnenrollmentNotAllowed(CourseEnrollmentException):
    pass


class CourseEnrollment(models.Model):
    """A learner's enrollment in a course; inactive rows are kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    course = models.ForeignKey(CourseOverview, db_constraint=False, on_delete=models.DO_NOTHING)
    created = models.DateTimeField(auto_now_add=True, null=True, db_index=True)
    is_active = models.BooleanField(default=True)
    mode = models.CharField(default=CourseMode.get_default_mode_slug, max_length=100)

    class Meta:
        app_label = "student"
        unique_together = (("user", "course"),)

    def __str__(self):
        return f"[CourseEnrollment] {self.user}: {self.course_id}; active: ({self.is_active})"

    @classmethod
    def get_or_create_enrollment(cls, user, course_key):
        """Get or create an (inactive by default) enrollment, linking an unlinked allowed record."""
        assert isinstance(course_key, CourseKey)
        enrollment, _ = cls.objects.get_or_create(
            user=user, course_id=course_key, defaults={"mode": CourseMode.DEFAULT_MODE_SLUG, "is_active": False},
        )
        unlinked = CourseEnrollmentAllowed.objects.filter(email=user.email, course_id=course_key, user__isnull=True)
        unlinked.update(user=user)
        return enrollment

    @classmethod
    def get_enrollment(cls, user, course_key, select_related=None):  # pylint: disable=unused-argument
        try:
            return cls.objects.get(user=user, course_id=course_key)
        except cls.DoesNotExist:
            return None

    def update_enrollment(self, mode=None, is_active=None, skip_refund=False, enterprise_uuid=None):  # pylint: disable=unused-argument
        changed = False
        if is_active is not None and self.is_active != is_active:
            self.is_active = is_active
            changed = True
        if mode is not None and self.mode != mode:
            self.mode = mode
            changed = True
        if changed:
            self.save()

    @classmethod
    def enroll(cls, user, course_key, mode=None, check_access=False, can_upgrade=False, enterprise_uuid=None):  # pylint: disable=unused-argument
        """Enroll, in ``mode`` or (when None) the course's default mode."""
        try:
            user, course_key, mode = CourseEnrollmentStarted.run_filter(user=user, course_key=course_key, mode=mode)
        except CourseEnrollmentStarted.PreventEnrollment as exc:
            raise EnrollmentNotAllowed(str(exc)) from exc
        if mode is None:
            mode = default_course_mode(str(course_key))
        if check_access:
            if not CourseOverview.objects.filter(id=course_key).exists():
                raise NonExistentCourseError
            if cls.is_enrolled(user, course_key):
                raise AlreadyEnrolledError
        enrollment = cls.get_or_create_enrollment(user, course_key)
        enrollment.update_enrollment(is_active=True, mode=mode)
        return enrollment

    @classmethod
    def unenroll(cls, user, course_id, skip_refund=False):
        """Deactivate the enrollment; nothing (but a log line, in the LMS) when there is none."""
        try:
            record = cls.objects.get(user=user, course_id=course_id)
        except cls.DoesNotExist:
            return
        try:
            record = CourseUnenrollmentStarted.run_filter(enrollment=record)
        except CourseUnenrollmentStarted.PreventUnenrollment as exc:
            raise UnenrollmentNotAllowed(str(exc)) from exc
        record.update_enrollment(is_active=False, skip_refund=skip_refund)

    @classmethod
    def is_enrolled(cls, user, course_key):
        return cls.enrollment_mode_for_user(user, course_key)[1] or False

    @classmethod
    def enrollment_mode_for_user(cls, user, course_id):
        """(mode, is_active), or (None, None) when there is no enrollment row."""
        record = cls.objects.filter(user=user, course_id=course_id).values_list("mode", "is_active").first()
        return record if record else (None, None)


class ManualEnrollmentAudit(models.Model):
    """Enrollment changes not made by the learner, shown to course staff."""

    enrollment = models.ForeignKey(CourseEnrollment, null=True, on_delete=models.CASCADE)
    enrolled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    enrolled_email = models.CharField(max_length=255, db_index=True)
    time_stamp = models.DateTimeField(auto_now_add=True, null=True)
    state_transition = models.CharField(max_length=255, choices=TRANSITION_STATES)
    reason = models.TextField(null=True)
    role = models.CharField(blank=True, null=True, max_length=64)

    class Meta:
        app_label = "student"

    def __str__(self):
        return f"{self.enrolled_email}: {self.state_transition}"

    @classmethod
    def create_manual_enrollment_audit(cls, user, email, state_transition, reason, enrollment=None, role=None):
        return cls.objects.create(
            enrolled_by=user, enrolled_email=email, state_transition=state_transition, reason=reason,
            enrollment=enrollment, role=role,
        )

    @classmethod
    def get_manual_enrollment_by_email(cls, email):
        return cls.objects.filter(enrolled_email=email).order_by("-time_stamp", "-id").first()


class CourseEnrollmentAllowed(models.Model):
    """An email (with or without an account) allowed to enroll in a course."""

    email = models.CharField(max_length=255, db_index=True)
    course_id = CourseKeyField(max_length=255, db_index=True)
    auto_enroll = models.BooleanField(default=0)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    created = models.DateTimeField(auto_now_add=True, null=True, db_index=True)

    class Meta:
        app_label = "student"
        unique_together = (("email", "course_id"),)

    def __str__(self):
        return f"[CourseEnrollmentAllowed] {self.email}: {self.course_id}"

    @classmethod
    def for_user(cls, user):
        """The records usable by ``user``: exact email match, not consumed by another account."""
        return cls.objects.filter(email=user.email).filter(Q(user__isnull=True) | Q(user=user))
