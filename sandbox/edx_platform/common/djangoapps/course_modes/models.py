"""Stand-in for the LMS's CourseMode."""
from collections import defaultdict, namedtuple

from django.db import models
from django.dispatch import receiver
from django.utils.timezone import now
from edx_django_utils.cache import RequestCache
from openedx.core.djangoapps.content.course_overviews.models import CourseOverview
from openedx.core.lib.cache_utils import request_cached

Mode = namedtuple("Mode", ["slug", "name", "min_price", "currency", "expiration_datetime"])


class CourseMode(models.Model):
    """A mode (track) a course offers."""

    course = models.ForeignKey(CourseOverview, db_constraint=False, related_name="modes", on_delete=models.DO_NOTHING)
    mode_slug = models.CharField(max_length=100)
    mode_display_name = models.CharField(max_length=255)
    min_price = models.IntegerField(default=0)
    currency = models.CharField(default="usd", max_length=8)
    expiration_datetime = models.DateTimeField(default=None, null=True, blank=True, db_column="expiration_datetime")

    AUDIT = "audit"
    HONOR = "honor"
    VERIFIED = "verified"
    CREDIT_MODE = "credit"
    DEFAULT_MODE_SLUG = "audit"
    DEFAULT_MODE = Mode("audit", "Audit", 0, "usd", None)
    CACHE_NAMESPACE = "course_modes.CourseMode.cache."

    class Meta:
        app_label = "course_modes"
        unique_together = ("course", "mode_slug", "currency")

    def __str__(self):
        return f"{self.course_id}: {self.mode_slug}"

    @property
    def slug(self):
        return self.mode_slug

    @classmethod
    def get_default_mode_slug(cls):
        return cls.DEFAULT_MODE_SLUG

    def to_tuple(self):
        return Mode(self.mode_slug, self.mode_display_name, self.min_price, self.currency, self.expiration_datetime)

    @classmethod
    def all_modes_for_courses(cls, course_id_list):
        """Every mode of each course, expired ones included; the default mode for a course with none (as the LMS)."""
        modes_by_course = defaultdict(list)
        for mode in cls.objects.filter(course_id__in=course_id_list):
            modes_by_course[mode.course_id].append(mode.to_tuple())
        for course_id in set(course_id_list) - set(modes_by_course):
            modes_by_course[course_id] = [cls.DEFAULT_MODE]
        return modes_by_course

    @classmethod
    def all_and_unexpired_modes_for_courses(cls, course_id_list):
        """(all modes, unexpired modes) by course, in one query (as the LMS)."""
        now_dt = now()
        all_modes = cls.all_modes_for_courses(course_id_list)
        unexpired = {
            course_id: [mode for mode in modes
                        if mode.expiration_datetime is None or mode.expiration_datetime >= now_dt]
            for course_id, modes in all_modes.items()
        }
        return all_modes, unexpired

    @classmethod
    @request_cached(CACHE_NAMESPACE)
    def modes_for_course(cls, course_id=None, include_expired=False, only_selectable=True, course=None):
        """
        The course's modes; the default mode when it has none. As the LMS's, the
        answer is kept for the rest of the request (by its arguments, as given),
        and forgotten when any mode is saved or deleted.
        """
        if course is not None:
            course_id = course.id
        found = cls.objects.filter(course_id=course_id)
        if not include_expired:
            found = found.filter(models.Q(expiration_datetime__isnull=True) | models.Q(expiration_datetime__gte=now()))
        modes = [
            Mode(m.mode_slug, m.mode_display_name, m.min_price, m.currency, m.expiration_datetime) for m in found
            if not (only_selectable and m.mode_slug == cls.CREDIT_MODE)
        ]
        return modes or [cls.DEFAULT_MODE]


@receiver(models.signals.post_save, sender=CourseMode)
@receiver(models.signals.post_delete, sender=CourseMode)
def invalidate_course_mode_cache(sender, **kwargs):  # pylint: disable=unused-argument
    """As the LMS: a saved or deleted mode empties the request cache of modes."""
    RequestCache(namespace=CourseMode.CACHE_NAMESPACE).clear()
