"""
Monitoring custom attributes (edx-django-utils), so that an operator's APM (New
Relic, Datadog, OpenTelemetry, as ``OPENEDX_TELEMETRY`` configures) can chart
deliveries by source and status. Never an email, a secret or a body.

Attributes: ``lms_bridge.source``, ``lms_bridge.status`` (the delivery's stored
status, or ``rejected``), ``lms_bridge.response_status`` (the HTTP status the
sender got, in the web request) and ``lms_bridge.pairs`` (learner-course pairs).
"""
from edx_django_utils.monitoring import set_custom_attribute


def record_delivery(source, status=None, response_status=None, pairs=None):
    """Set the attributes known so far on the current transaction (web request or Celery task)."""
    set_custom_attribute("lms_bridge.source", source)
    if status is not None:
        set_custom_attribute("lms_bridge.status", str(status))
    if response_status is not None:
        set_custom_attribute("lms_bridge.response_status", int(response_status))
    if pairs:
        set_custom_attribute("lms_bridge.pairs", int(pairs))
