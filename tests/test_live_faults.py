"""
Faults on MariaDB: the database connection dies in the middle of a delivery.

The sender must get 503 with Retry-After (never a 2xx for something not
stored), and its retry, once the database is back, must complete the work
with no duplicate effect.
"""
import os
import time

import pytest
from common.djangoapps.student.models import CourseEnrollment, ManualEnrollmentAudit
from django.db import close_old_connections, connection
from django.test import Client, override_settings

from lms_bridge.models import DeliveryStatus, WebhookDelivery

from .backends import fakes
from .conftest import BRIDGE_COURSE, DEMO_COURSE, enrollment_of
from .signing import post_webhook

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("LMS_BRIDGE_TEST_MYSQL_PORT"), reason="needs MariaDB (make test runs it)"),
]

PAYLOAD = {"email": "ada@example.com", "courseIds": [DEMO_COURSE, BRIDGE_COURSE]}


def kill_django_connection():
    """Make the server end this process's database connection, as a restart or failover would."""
    import MySQLdb  # pylint: disable=import-outside-toplevel,import-error

    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        connection_id = cursor.fetchone()[0]
    settings = connection.settings_dict
    admin = MySQLdb.connect(host=settings["HOST"], port=int(settings["PORT"]), user=settings["USER"],
                            password=settings["PASSWORD"])
    try:
        admin.cursor().execute(f"KILL CONNECTION {int(connection_id)}")
    finally:
        admin.close()


@pytest.fixture
def scripted():
    fakes.SCRIPT.clear()
    fakes.BEFORE.clear()
    with override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]):
        yield fakes
    fakes.BEFORE.clear()


def test_connection_lost_mid_delivery(courses, ada, scripted):
    """Expected behavior: 503 + Retry-After; after the claim expires the retry completes, each effect once."""
    client = Client(enforce_csrf_checks=True)
    scripted.BEFORE[BRIDGE_COURSE] = kill_django_connection
    now = int(time.time())
    response = post_webhook(client, PAYLOAD, event_id="msg_fault", timestamp=now)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 60
    # Stored: the delivery and the first course's committed enrollment survive; the second course does not.
    assert WebhookDelivery.objects.filter(event_id="msg_fault").exists()
    assert enrollment_of(ada, BRIDGE_COURSE) == (None, None)

    scripted.BEFORE.clear()
    with override_settings(LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS=1):
        time.sleep(1.5)
        retry = post_webhook(client, PAYLOAD, event_id="msg_fault", timestamp=now)
    assert retry.status_code == 200, retry.content
    assert [r["outcome"] for r in retry.json()["results"]] == ["enrolled", "enrolled"]
    delivery = WebhookDelivery.objects.get(event_id="msg_fault")
    assert delivery.status == DeliveryStatus.PROCESSED
    assert CourseEnrollment.objects.filter(user=ada, is_active=True).count() == 2
    assert ManualEnrollmentAudit.objects.count() == 2


def test_connection_lost_before_anything_is_stored(courses, ada):
    """Expected behavior: the database is gone when the delivery arrives -> 503, nothing stored; the retry works."""
    client = Client(enforce_csrf_checks=True)
    kill_django_connection()
    response = post_webhook(client, PAYLOAD, event_id="msg_early", timestamp=int(time.time()))
    assert response.status_code == 503 and response.headers["Retry-After"]
    # What Django does when a request ends (the test client turns it off): drop the broken connection.
    close_old_connections()
    assert not WebhookDelivery.objects.filter(event_id="msg_early").exists()
    retry = post_webhook(client, PAYLOAD, event_id="msg_early", timestamp=int(time.time()))
    assert retry.status_code == 200
    assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)
