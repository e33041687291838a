"""What a delivery may ask for a learner in a course."""

ENROLL = "enroll"
UNENROLL = "unenroll"
ACTIONS = (ENROLL, UNENROLL)
