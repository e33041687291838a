"""Tests of the retention command lms_bridge_purge_deliveries."""
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from lms_bridge.models import DeliveryStatus, EnrollmentOperation, WebhookDelivery

from .conftest import DEMO_COURSE
from .signing import post_webhook

pytestmark = pytest.mark.django_db


def run(*args):
    out = io.StringIO()
    call_command("lms_bridge_purge_deliveries", *args, stdout=out)
    return out.getvalue()


def test_old_finished_deliveries_are_deleted_with_their_operations(client, courses, ada):
    """Expected behavior: finished deliveries older than N days go (operations too); recent and unfinished stay."""
    for number in range(3):
        post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}, event_id=f"msg_{number}")
    old, unfinished, _recent = WebhookDelivery.objects.order_by("id")
    long_ago = timezone.now() - timezone.timedelta(days=400)
    WebhookDelivery.objects.filter(pk__in=[old.pk, unfinished.pk]).update(received_at=long_ago)
    WebhookDelivery.objects.filter(pk=unfinished.pk).update(status=DeliveryStatus.RECEIVED)

    assert run("--older-than-days", "365", "--dry-run").startswith("1 deliveries")
    assert WebhookDelivery.objects.count() == 3
    assert run("--older-than-days", "365").startswith("Deleted 1 deliveries")
    assert set(WebhookDelivery.objects.values_list("event_id", flat=True)) == {"msg_1", "msg_2"}
    assert EnrollmentOperation.objects.count() == 2


def test_days_must_be_positive():
    """Expected behavior: 0 days would delete everything: refused."""
    with pytest.raises(CommandError, match="at least 1"):
        run("--older-than-days", "0")
