"""Stand-in for common.djangoapps.student.models (a package, as in the LMS)."""
from .course_enrollment import *  # noqa: F403
from .user import *  # noqa: F403
