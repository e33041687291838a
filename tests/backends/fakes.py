"""
A scriptable backend for tests of processing and partial failures.

It is the real in-process backend, except for the courses a test scripts to
fail (``SCRIPT[course_id] = exception``), so failures happen where a real
backend would raise them, and everything else runs for real.
"""
from lms_bridge.backends.openedx import OpenEdxBackend

SCRIPT = {}
EXISTS_SCRIPT = {}
BEFORE = {}  # course id -> a callable run before the real set_enrollment
CALLS = []


class ScriptedBackend(OpenEdxBackend):
    """OpenEdxBackend whose set_enrollment raises what SCRIPT says, for the scripted courses."""

    def existing_courses(self, course_keys):
        for course_key in course_keys:
            failure = EXISTS_SCRIPT.get(str(course_key))
            if failure is not None:
                raise failure
        return super().existing_courses(course_keys)

    def set_enrollment(self, learner, course_key, active=True, mode=None, context=None):
        CALLS.append(str(course_key))
        failure = SCRIPT.get(str(course_key))
        if failure is not None:
            raise failure
        if str(course_key) in BEFORE:
            BEFORE[str(course_key)]()
        return super().set_enrollment(learner, course_key, active=active, mode=mode, context=context)
