"""Stand-in for the LMS's enrollment models (common/djangoapps/student/models/course_enrollment.py)."""
from common.djangoapps.course_modes.models import CourseMode
from django.conf import settings
from django.db import models
from django.db.models import Q
from edx_django_utils.cache import RequestCache
from opaque_keys.edx.django.models import CourseKeyField
from opaque_keys.edx.keys import CourseKey
from openedx.core.djangoapps.content.course_overviews.models import CourseOverview
from openedx.core.djangoapps.enrollments.api import _default_course_mode
from openedx_filters.learning.filters import CourseEnrollmentStarted, CourseUnenrollmentStarted

__all__ = [
    "ALLOWEDTOENROLL_TO_ENROLLED",
    "ALLOWEDTOENROLL_TO_UNENROLLED",
    "DEFAULT_TRANSITION_STATE",
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
# The platform's quirk, kept as it is in the releases lms_bridge supports (a
# copy-paste slip upstream; only the newest master spells it "to unenrolled").
ALLOWEDTOENROLL_TO_UNENROLLED = "from allowed to enroll to enrolled"
UNENROLLED_TO_UNENROLLED = "from unenrolled to unenrolled"
DEFAULT_TRANSITION_STATE = "N/A"
TRANSITION_STATES = [(state, state) for state in (
    UNENROLLED_TO_ALLOWEDTOENROLL, ALLOWEDTOENROLL_TO_ENROLLED, ENROLLED_TO_ENROLLED, ENROLLED_TO_UNENROLLED,
    UNENROLLED_TO_ENROLLED, ALLOWEDTOENROLL_TO_UNENROLLED, UNENROLLED_TO_UNENROLLED, DEFAULT_TRANSITION_STATE,
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


class CourseEnrollmentManager(models.Manager):
    """Table-level queries, as the LMS's manager has them."""

    def num_enrolled_in_exclude_admins(self, course_id):
        """Active enrollments (the LMS also leaves out the course's staff; the stand-in has no course roles)."""
        return self.get_queryset().filter(course_id=course_id, is_active=True).count()

    def is_course_full(self, course):
        """Whether the course has reached max_student_enrollments_allowed (None: no limit)."""
        if course.max_student_enrollments_allowed is None:
            return False
        return self.num_enrolled_in_exclude_admins(course.id) >= course.max_student_enrollments_allowed


def _can_enroll(user, course):
    """
    The LMS's ``_can_enroll_courselike`` (lms/djangoapps/courseware/access.py):
    an allowance for the user's email (not consumed by another account) or
    staff access lets them in; otherwise an invite-only course refuses, and the
    enrollment window decides.
    """
    cea = CourseEnrollmentAllowed.objects.filter(email=user.email, course_id=course.id).first()
    if cea:
        return cea.valid_for_user(user)
    if user.is_staff:
        return True
    if course.invitation_only:
        return False
    return course.is_enrollment_open()


class CourseEnrollment(models.Model):
    """A learner's enrollment in a course; inactive rows are kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    course = models.ForeignKey(CourseOverview, db_constraint=False, on_delete=models.DO_NOTHING)
    created = models.DateTimeField(auto_now_add=True, null=True, db_index=True)
    is_active = models.BooleanField(default=True)
    mode = models.CharField(default=CourseMode.get_default_mode_slug, max_length=100)

    objects = CourseEnrollmentManager()

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
            self._update_enrollment_in_request_cache(self.user, self.course_id, (self.mode, self.is_active))
            # The LMS then sends COURSE_ENROLLMENT_CHANGED with the learner's
            # profile name: an account without a UserProfile fails right here.
            _ = self.user.profile.name

    @classmethod
    def is_enrollment_closed(cls, user, course):
        """Whether ``user`` may not enroll in ``course`` (the LMS's has_access(user, 'enroll', course))."""
        return not _can_enroll(user, course)

    @classmethod
    def enroll(cls, user, course_key, mode=None, check_access=False, can_upgrade=False, enterprise_uuid=None):  # pylint: disable=unused-argument
        """
        Enroll, in ``mode`` or (when None) the course's default mode.

        With ``check_access`` (the enrollment API's way) a closed enrollment
        window or an invite-only course raises EnrollmentClosedError unless the
        learner may enroll anyway (an allowance, staff) or ``can_upgrade`` (the
        API's ``force_enrollment``); a full course raises CourseFullError
        whatever ``can_upgrade`` says; an active enrollment AlreadyEnrolledError.
        """
        try:
            user, course_key, mode = CourseEnrollmentStarted.run_filter(user=user, course_key=course_key, mode=mode)
        except CourseEnrollmentStarted.PreventEnrollment as exc:
            raise EnrollmentNotAllowed(str(exc)) from exc
        if mode is None:
            mode = _default_course_mode(str(course_key))
        try:
            course = CourseOverview.get_from_id(course_key)
        except CourseOverview.DoesNotExist as err:
            if check_access:
                raise NonExistentCourseError from err
            course = None
        if check_access:
            if cls.is_enrollment_closed(user, course) and not can_upgrade:
                raise EnrollmentClosedError
            if cls.objects.is_course_full(course):
                raise CourseFullError
        if cls.is_enrolled(user, course_key) and check_access:
            raise AlreadyEnrolledError
        enrollment = cls.get_or_create_enrollment(user, course_key)
        enrollment.update_enrollment(is_active=True, mode=mode)
        # The LMS sends COURSE_ENROLLMENT_CREATED with the profile name too.
        _ = user.profile.name
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

    # As the LMS: enrollment states are cached per request (edx-django-utils' RequestCache). Outside a
    # web request (a Celery task, a command) nothing clears that cache between one piece of work and the next.
    MODE_CACHE_NAMESPACE = "CourseEnrollment.mode_and_active"

    @classmethod
    def enrollment_mode_for_user(cls, user, course_id):
        """(mode, is_active), or (None, None) when there is no enrollment row; request-cached, as the LMS's."""
        cache = RequestCache(cls.MODE_CACHE_NAMESPACE).data
        state = cache.get((user.id, course_id))
        if state is None:
            record = cls.objects.filter(user=user, course_id=course_id).values_list("mode", "is_active").first()
            state = tuple(record) if record else (None, None)
            cache[(user.id, course_id)] = state
        return state

    @classmethod
    def _update_enrollment_in_request_cache(cls, user, course_key, state):
        RequestCache(cls.MODE_CACHE_NAMESPACE).data[(user.id, course_key)] = state


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

    def valid_for_user(self, user):
        """Usable by ``user``: not linked yet, or linked to them."""
        return self.user_id is None or self.user_id == user.id

    @classmethod
    def for_user(cls, user):
        """The records usable by ``user``: exact email match, not consumed by another account."""
        return cls.objects.filter(email=user.email).filter(Q(user__isnull=True) | Q(user=user))
