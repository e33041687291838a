"""Stand-in for common.djangoapps.course_modes."""
