"""Stand-in for openedx.core.djangoapps.enrollments.api: the default mode the platform picks for a course."""
from common.djangoapps.course_modes.models import CourseMode
from opaque_keys.edx.keys import CourseKey


def _default_course_mode(course_id):
    """
    The mode an enrollment gets when none is asked: audit when the course
    offers it, else honor, else audit all the same (which the enrollment API
    then refuses as not offered, while ``CourseEnrollment.enroll`` enrolls).
    """
    available_modes = [mode.slug for mode in CourseMode.modes_for_course(CourseKey.from_string(str(course_id)))]
    if CourseMode.DEFAULT_MODE_SLUG in available_modes:
        return CourseMode.DEFAULT_MODE_SLUG
    if "audit" in available_modes:
        return "audit"
    if "honor" in available_modes:
        return "honor"
    return CourseMode.DEFAULT_MODE_SLUG
