"""
The Celery tasks' logic, called in this process (the broker is down: publishing
fails, as it would with Redis stopped). The same tasks on real workers and a real
Redis: tests/test_live_celery.py.
"""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

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


def test_a_chunk_another_worker_holds_is_looked_at_again_when_its_lease_ends(courses, ada, caplog, monkeypatch):
    """Expected behavior: queued again with a countdown of the lease's remaining time, at most the timeout."""
    delivery = queued("ada@example.com")
    chunk = DeliveryChunk.objects.create(delivery=delivery, number=0, pairs=2, status="processing",
                                         lease_expires_at=timezone.now() + timedelta(seconds=7))
    tasks.process_chunk_task(delivery.pk, 0)
    assert "could not queue chunk 0" in caplog.text
    assert DeliveryChunk.objects.get(delivery=delivery).status == "processing"
    queued_again = []
    monkeypatch.setattr(tasks, "enqueue_chunk", lambda *args: queued_again.append(args))
    tasks.process_chunk_task(delivery.pk, 0)
    assert queued_again and 7 <= queued_again[0][3] <= 8
    chunk.lease_expires_at = timezone.now() + timedelta(days=300)  # not a lease this code takes
    chunk.save()
    with override_settings(LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS=30):
        tasks.process_chunk_task(delivery.pk, 0)
    assert queued_again[1][3] == 31


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


@override_settings(LMS_BRIDGE_CHUNK_PAIRS=2)
def test_a_chunk_a_dead_worker_held_is_resumed_by_the_sweeper(courses, ada, caplog):
    """
    Expected behavior: the delivery goes on (its other chunks renew its lease), but the chunk
    whose worker died is stranded once its own lease ends: the sweeper resumes that chunk.
    """
    delivery = queued("ada@example.com", "new@example.com", "other@example.com")  # 6 pairs, 3 chunks
    tasks.process_delivery_task(delivery.pk)  # chunk 0 done here; 1 and 2 could not be queued
    tasks.process_chunk_task(delivery.pk, 2)
    DeliveryChunk.objects.filter(delivery=delivery, number=1).update(
        status="processing", lease_expires_at=timezone.now() - timedelta(seconds=1))  # its worker was killed
    assert call_sweep() == "0 delivery(ies) to process here\nqueued: 0, processed here: 0, chunks resumed: 1, " \
                           "could not be queued: 0\n"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert not DeliveryChunk.objects.filter(delivery=delivery).exclude(status="done").exists()
    assert EnrollmentOperation.objects.filter(delivery=delivery, outcome="pending").count() == 0
    assert call_sweep().startswith("0 delivery(ies)") and "chunks resumed: 0" in call_sweep()


def call_sweep():
    out = StringIO()
    call_command("lms_bridge_sweep", "--here", stdout=out)
    return out.getvalue()
