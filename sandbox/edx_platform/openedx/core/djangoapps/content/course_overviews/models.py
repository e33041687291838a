"""Stand-in for the LMS's CourseOverview: one row per published course."""
from datetime import UTC, datetime

from django.db import models
from opaque_keys.edx.django.models import CourseKeyField
from openedx.core.lib.cache_utils import request_cached


class CourseOverview(models.Model):
    """A published course, keyed by its course key."""

    id = CourseKeyField(db_index=True, primary_key=True, max_length=255)
    display_name = models.TextField(null=True)
    enrollment_start = models.DateTimeField(null=True)
    enrollment_end = models.DateTimeField(null=True)
    invitation_only = models.BooleanField(default=False)
    max_student_enrollments_allowed = models.IntegerField(null=True)

    class Meta:
        app_label = "course_overviews"

    def __str__(self):
        return str(self.id)

    def is_enrollment_open(self):
        """Within the enrollment window (an unset bound is open), as the LMS's CourseOverview answers."""
        now = datetime.now(UTC)
        start = self.enrollment_start or datetime.min.replace(tzinfo=UTC)
        end = self.enrollment_end or datetime.max.replace(tzinfo=UTC)
        return start < now < end

    @classmethod
    @request_cached("course_overview")
    def get_from_id(cls, course_id):
        """
        Return the overview of a course; raises DoesNotExist like the real one.

        Request-cached, as the real one: within one request (or, outside one, until
        the request cache is cleared) a course is read once.
        """
        return cls.objects.get(id=course_id)
