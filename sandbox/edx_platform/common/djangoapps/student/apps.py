"""Stand-in app config."""
from django.apps import AppConfig


class StudentConfig(AppConfig):
    name = "common.djangoapps.student"
    label = "student"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from .models import user  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
