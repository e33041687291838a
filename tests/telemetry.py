"""A telemetry backend (edx-django-utils ``OPENEDX_TELEMETRY``) that keeps what it is told, for the tests."""
from edx_django_utils.monitoring import TelemetryBackend

RECORDED = []


class RecordingBackend(TelemetryBackend):
    """Records every custom attribute set, as (key, value)."""

    def set_attribute(self, key, value):
        RECORDED.append((key, value))

    def record_exception(self):
        """Exceptions are not what these tests look at."""

    def create_span(self, name, *args, **kwargs):  # pylint: disable=unused-argument
        from contextlib import nullcontext  # pylint: disable=import-outside-toplevel

        return nullcontext()

    def tag_root_span_with_error(self, exception):
        """Nothing to tag."""

    def set_local_root_span_name(self, name, group=None, priority=None):
        """Names are not what these tests look at."""
