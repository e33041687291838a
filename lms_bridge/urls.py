"""
URLs of lms_bridge, mounted by the Open edX plugin system under ``/api/lms-bridge/``.

The trailing slash is optional: a redirect would lose a POST's body, so the
endpoint never answers 3xx.
"""
from django.urls import re_path

from .views import WebhookView

app_name = "lms_bridge"

webhook_view = WebhookView.as_view()

urlpatterns = [
    re_path(r"^v1/webhooks/(?P<source>[^/]+)/$", webhook_view, name="webhook"),
    re_path(r"^v1/webhooks/(?P<source>[^/]+)$", webhook_view, name="webhook-without-slash"),
]
