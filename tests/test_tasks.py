"""
The Celery tasks' logic, called in this process (the broker is down: publishing
fails, as it would with Redis stopped). The same tasks on real workers and a real
Redis: tests/test_live_celery.py.
"""
import pytest
from django.test import Client, override_settings

from lms_bridge import tasks
from lms_bridge.backends.base import TransientBackendError
from lms_bridge.models import DeliveryChunk, DeliveryStatus, EnrollmentOperation, WebhookDelivery
from lms_bridge.processing import backoff_seconds

from .backends import fakes
from .conftest import BRIDGE_COURSE, DEMO_COURSE, enrollment_of
from .signing import post_webhook

pytestmark = pytest.mark.django_db

SCRIPTED = [{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]


def queued(*emails, courses=(DEMO_COURSE, BRIDGE_COURSE)):
    response = post_webhook(Client(), {"learners": [{"email": email} for email in emails], "courseIds": list(courses)},
                            source="cohorts-async")
    assert response.status_code == 202, response.content
    return WebhookDelivery.objects.get(uuid=response.json()["delivery"])


@override_settings(LMS_BRIDGE_CHUNK_PAIRS=2)
def test_the_first_task_does_the_first_chunk_and_queues_the_others(courses, ada, caplog):
    """Expected behavior: 4 pairs, chunks of 2: chunk 0 done by the first task; chunk 1 waits for its own task."""
    delivery = queued("ada@example.com", "new@example.com")
    tasks.process_delivery_task(delivery.pk)
    assert "could not queue chunk 1" in caplog.text  # the broker is down: the sweeper's job
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSING
    assert list(delivery.chunks.values_list("number", "status")) == [(0, "done"), (1, "pending")]
    tasks.process_chunk_task(delivery.pk, 1)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert delivery.response_body["counts"] == {"enrolled": 2, "allowed": 2}
    # A redelivered task (acks_late) finds nothing to do, and changes nothing.
    tasks.process_chunk_task(delivery.pk, 1)
    tasks.process_delivery_task(delivery.pk)
    assert EnrollmentOperation.objects.filter(delivery=delivery).count() == 4
    assert DeliveryChunk.objects.get(delivery=delivery, number=1).attempts == 1


def test_a_transient_failure_is_retried_then_given_up_after_the_last_attempt(courses, ada, caplog):
    """Expected behavior: a retry -> the chunk is pending again; the last attempt leaves retry, the delivery fails."""
    fakes.SCRIPT.clear()
    fakes.SCRIPT[DEMO_COURSE] = TransientBackendError("LMS down")
    try:
        with override_settings(LMS_BRIDGE_BACKENDS=SCRIPTED, LMS_BRIDGE_TASK_MAX_RETRIES=1):
            delivery = queued("ada@example.com")
            tasks.process_delivery_task(delivery.pk)
            assert "could not queue chunk 0" in caplog.text  # its retry, with a countdown
            assert DeliveryChunk.objects.get(delivery=delivery).status == "pending"
            assert enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)  # the other pair is done
            tasks.process_chunk_task(delivery.pk, 0, retries=1)  # the last attempt
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PARTIALLY_FAILED and delivery.retryable is True
        assert EnrollmentOperation.objects.get(delivery=delivery, course_id=DEMO_COURSE).outcome == "retry"
    finally:
        fakes.SCRIPT.clear()


def test_a_chunk_another_worker_holds_is_looked_at_again_later(courses, ada, caplog):
    delivery = queued("ada@example.com")
    DeliveryChunk.objects.create(delivery=delivery, number=0, pairs=2, status="processing",
                                 lease_expires_at="2999-01-01T00:00:00Z")
    tasks.process_chunk_task(delivery.pk, 0)
    assert "could not queue chunk 0" in caplog.text
    assert DeliveryChunk.objects.get(delivery=delivery).status == "processing"


def test_backoff_grows_is_capped_and_honours_retry_after():
    with override_settings(LMS_BRIDGE_TASK_BACKOFF_SECONDS=5, LMS_BRIDGE_TASK_BACKOFF_MAX_SECONDS=60):
        assert all(5 <= backoff_seconds(0) <= 5 for _ in range(20))
        assert all(5 <= backoff_seconds(3) <= 40 for _ in range(50))
        assert max(backoff_seconds(10) for _ in range(200)) <= 60
        assert backoff_seconds(0, retry_after=120) == 120


def test_the_sweep_task_queues_what_was_left(courses, ada, caplog):
    delivery = queued("ada@example.com")
    with override_settings(LMS_BRIDGE_SWEEP_AFTER_SECONDS=0):
        tasks.sweep_task()
    assert f"could not queue delivery {delivery.pk}" in caplog.text
