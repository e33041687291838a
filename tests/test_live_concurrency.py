"""
Exactly-once under concurrency, against gunicorn (4 workers) and MariaDB.

50 requests at once, from 50 threads: the database's unique constraints and
row locks, not luck, must make each effect happen once.
"""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from common.djangoapps.student.models import CourseEnrollment, CourseEnrollmentAllowed, ManualEnrollmentAudit

from lms_bridge.models import EnrollmentOperation, WebhookDelivery

from .conftest import DEMO_COURSE
from .signing import WEBHOOK_URL, body_bytes, sign_for

pytestmark = pytest.mark.django_db(transaction=True)

COPIES = 50


def fire(server, requests):
    """Send all requests at once; return [(status, parsed body)]."""
    def send(request):
        body, headers = request
        status, _, reply = server.request("POST", WEBHOOK_URL.format(source="shop"), body=body,
                                          headers={"Content-Type": "application/json", **headers})
        return status, json.loads(reply or b"null")

    with ThreadPoolExecutor(max_workers=COPIES) as pool:
        return list(pool.map(send, requests))


def test_copies_of_one_delivery_take_effect_once(live_gunicorn, courses, ada):
    """Expected behavior: 50 concurrent copies (same webhook-id) -> all 2xx, one delivery processed once."""
    body = body_bytes({"email": "ada@example.com", "courseIds": [DEMO_COURSE], "mode": "verified"})
    headers = sign_for("shop", body, event_id="msg_same", timestamp=int(time.time()))
    results = fire(live_gunicorn, [(body, headers)] * COPIES)
    assert all(200 <= status < 300 for status, _ in results), (results, live_gunicorn.output())
    assert WebhookDelivery.objects.filter(signature_valid=True).count() == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("processed", 1)
    assert EnrollmentOperation.objects.get().attempts == 1
    assert CourseEnrollment.objects.filter(user=ada, is_active=True, mode="verified").count() == 1
    assert ManualEnrollmentAudit.objects.count() == 1


def test_different_deliveries_for_one_enrollment(live_gunicorn, courses, ada):
    """Expected behavior: 50 concurrent deliveries -> one enrollment, enrolled once, already_enrolled 49 times."""
    body = body_bytes({"email": "ada@example.com", "courseIds": [DEMO_COURSE]})
    requests = [(body, sign_for("shop", body, event_id=f"msg_{n}")) for n in range(COPIES)]
    results = fire(live_gunicorn, requests)
    assert {status for status, _ in results} == {200}, (results, live_gunicorn.output())
    outcomes = sorted(reply["results"][0]["outcome"] for _, reply in results)
    assert outcomes == ["already_enrolled"] * (COPIES - 1) + ["enrolled"]
    assert WebhookDelivery.objects.filter(status="processed").count() == COPIES
    assert CourseEnrollment.objects.filter(user=ada).count() == 1
    assert ManualEnrollmentAudit.objects.count() == 1


def test_different_deliveries_for_one_allowance(live_gunicorn, courses):
    """Expected behavior: 50 concurrent deliveries for an unknown email (in varying case) -> one allowance."""
    requests = []
    for n in range(COPIES):
        email = "Newcomer@Example.com" if n % 2 else "newcomer@example.com"
        body = body_bytes({"email": email, "courseIds": [DEMO_COURSE]})
        requests.append((body, sign_for("shop", body, event_id=f"msg_a{n}")))
    results = fire(live_gunicorn, requests)
    assert {status for status, _ in results} == {200}, (results, live_gunicorn.output())
    outcomes = sorted(reply["results"][0]["outcome"] for _, reply in results)
    assert outcomes == ["allowed"] + ["already_allowed"] * (COPIES - 1)
    assert CourseEnrollmentAllowed.objects.count() == 1
    assert ManualEnrollmentAudit.objects.count() == 1
