"""Stand-in for common.djangoapps.student."""
