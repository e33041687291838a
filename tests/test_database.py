"""
Database behaviour lms_bridge relies on, run on SQLite and (in make test) MariaDB.
"""
import os

import pytest
from common.djangoapps.student.models import CourseEnrollmentAllowed
from django.db import connection

from lms_bridge.models import WebhookDelivery

from .conftest import DEMO_COURSE
from .signing import post_webhook

pytestmark = pytest.mark.django_db


def test_the_configured_database_is_used():
    """Expected behavior: with LMS_BRIDGE_TEST_MYSQL_* set the suite really runs on MariaDB."""
    expected = "mysql" if os.environ.get("LMS_BRIDGE_TEST_MYSQL_PORT") else "sqlite"
    assert connection.vendor == expected


def test_emails_differing_in_case_are_one_learner(client, courses):
    """Expected behavior: Case@Example.com then case@example.com -> one allowance, already_allowed the second time."""
    first = post_webhook(client, {"email": "New.Learner@Example.com", "courseIds": [DEMO_COURSE]})
    second = post_webhook(client, {"email": "new.learner@example.com", "courseIds": [DEMO_COURSE]})
    assert first.json()["results"][0]["outcome"] == "allowed"
    assert second.json()["results"][0]["outcome"] == "already_allowed"
    assert CourseEnrollmentAllowed.objects.count() == 1


def test_event_ids_differing_in_case_are_two_deliveries(client, courses, ada):
    """Expected behavior: msg_ABC and msg_abc are different deliveries, even under a case-insensitive collation."""
    body = {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}
    assert post_webhook(client, body, event_id="msg_ABC").status_code == 200
    second = post_webhook(client, body, event_id="msg_abc")
    assert second.status_code == 200 and "Idempotent-Replayed" not in second.headers
    assert WebhookDelivery.objects.count() == 2
