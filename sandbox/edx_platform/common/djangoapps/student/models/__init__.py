"""Stand-in for common.djangoapps.student.models (a package, as in the LMS)."""
from .course_enrollment import *  # noqa: F401,F403
from .user import *  # noqa: F401,F403
