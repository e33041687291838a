"""
Database behaviour lms_bridge relies on, run on SQLite and (in make test) on
MariaDB twice: with utf8mb4_unicode_ci tables (Tutor today) and with
utf8mb3_general_ci tables (installs from before Tutor's move to utf8mb4).
Both collations ignore case, accents and letter width.
"""
import json
import os

import pytest
from common.djangoapps.student.models import CourseEnrollmentAllowed
from django.db import connection

from lms_bridge import strict_json
from lms_bridge.models import WebhookDelivery

from .conftest import DEMO_COURSE, enrollment_of
from .signing import post_webhook

LOOKALIKES = ["ada@exämple.com", "ADA@ｅxample.com", "ada@éxample.com"]


def database_confuses(email, other):
    """The database's own verdict: does its collation take ``email`` for ``other``?"""
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM auth_user WHERE email = %s", [email])
        return other in {row[0] for row in cursor.fetchall()}


def test_mariadb_collations_confuse_lookalike_emails(ada):
    """
    Expected behavior (the premise of the tests below): on MariaDB's
    collations ada@exämple.com is ada@example.com (on utf8mb4_unicode_ci the
    fullwidth ｅ too); SQLite tells them apart.
    """
    mysql = connection.vendor == "mysql"
    assert database_confuses("ada@exämple.com", "ada@example.com") is mysql
    unicode_ci = mysql and os.environ.get("LMS_BRIDGE_TEST_MYSQL_CHARSET") != "utf8mb3"
    assert database_confuses("ada@ｅxample.com", "ada@example.com") is unicode_ci

pytestmark = pytest.mark.django_db


def test_the_configured_database_is_used():
    """Expected behavior: with LMS_BRIDGE_TEST_MYSQL_* set the suite really runs on MariaDB, in the charset asked."""
    expected = "mysql" if os.environ.get("LMS_BRIDGE_TEST_MYSQL_PORT") else "sqlite"
    assert connection.vendor == expected
    if expected == "mysql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT table_collation FROM information_schema.tables WHERE table_schema = DATABASE() "
                           "AND table_name IN ('lms_bridge_webhookdelivery', 'auth_user')")
            collations = {row[0] for row in cursor.fetchall()}
        utf8mb3 = os.environ.get("LMS_BRIDGE_TEST_MYSQL_CHARSET") == "utf8mb3"
        assert collations == {"utf8mb3_general_ci" if utf8mb3 else "utf8mb4_unicode_ci"}


@pytest.mark.parametrize("lookalike", LOOKALIKES)
def test_a_lookalike_email_is_another_learner(client, courses, ada, lookalike):
    """
    Expected behavior: a delivery for an email that differs from ada's in
    accents or letter width neither enrolls nor unenrolls ada (on MariaDB the
    collation would match them), and never leaves a 5xx.
    """
    confused = database_confuses(lookalike, "ada@example.com")
    response = post_webhook(client, {"email": lookalike, "courseIds": [DEMO_COURSE]})
    assert response.status_code == 200, response.content
    assert enrollment_of(ada, DEMO_COURSE) == (None, None)
    assert response.json()["results"][0]["outcome"] == ("refused" if confused else "allowed")
    assert CourseEnrollmentAllowed.objects.exists() is not confused
    post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE]})
    response = post_webhook(client, {"email": lookalike, "courseIds": [DEMO_COURSE], "action": "unenroll"})
    # Where the database tells them apart, the lookalike got an allowance of its own above, which this removes.
    expected = "not_enrolled" if confused else "unenrolled"
    assert response.json()["results"][0]["outcome"] == expected
    assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)


def test_a_lookalike_email_keeps_another_allowance(client, courses):
    """Expected behavior: unenrolling nobody@exämple.com leaves nobody@example.com's allowance in place."""
    post_webhook(client, {"email": "nobody@example.com", "courseIds": [DEMO_COURSE]})
    response = post_webhook(client, {"email": "nobody@exämple.com", "courseIds": [DEMO_COURSE], "action": "unenroll"})
    assert response.json()["results"][0]["outcome"] == "not_enrolled"
    assert CourseEnrollmentAllowed.objects.filter(email="nobody@example.com").exists()


def test_four_byte_characters_are_recorded_and_processed(client, courses, ada):
    """
    Expected behavior: a name with an emoji (4-byte UTF-8, which a utf8mb3
    table cannot hold) is recorded and processed as on utf8mb4, and the stored
    body parses to exactly what was sent.
    """
    payload = {"email": "ada@example.com", "name": "Ada 🦄", "family": "Lovelace 𝔏", "courseIds": [DEMO_COURSE]}
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    assert "🦄".encode() in body
    response = post_webhook(client, body)
    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["outcome"] == "enrolled"
    delivery = WebhookDelivery.objects.get()
    assert strict_json.loads(delivery.body) == payload
    assert delivery.body_sha256 and not delivery.body_truncated


def test_four_byte_characters_in_a_forged_request_still_get_401(client, courses):
    """Expected behavior: an unsigned delivery holding an emoji is recorded as rejected and answered 401, not 503."""
    body = json.dumps({"email": "x@example.com", "name": "🦄", "courseIds": [DEMO_COURSE]}, ensure_ascii=False)
    response = post_webhook(client, body.encode("utf-8"), headers={})
    assert response.status_code == 401
    rejected = WebhookDelivery.objects.get()
    assert rejected.status == "rejected" and json.loads(rejected.body)["name"] == "🦄"


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
