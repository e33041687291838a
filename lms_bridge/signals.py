"""
Lifecycle signals: the seam for result callbacks and operators' own receivers.

Both are sent once the database has committed what they report
(``transaction.on_commit``), never for something that was rolled back:

``delivery_processed(sender=WebhookDelivery, delivery, status, retryable, counts)``
    A delivery reached a final status (processed, partially failed, failed,
    invalid, ignored). ``counts`` is the pairs by outcome.

``enrollment_changed(sender=WebhookDelivery, delivery, email, course_id, action, outcome, mode)``
    One pair changed an enrollment (``enrolled``, ``mode_changed``, ``allowed``
    or ``unenrolled``); pairs already in the requested state send nothing.

A receiver that raises is logged and does not undo anything. Receivers get the
learner's email: they must not log it.
"""
import logging

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

delivery_processed = Signal()
enrollment_changed = Signal()


def _send_robust(signal, **kwargs):
    """Send to every receiver; log (without the learner's data) those that raise."""
    from .models import WebhookDelivery  # pylint: disable=import-outside-toplevel

    for receiver, response in signal.send_robust(sender=WebhookDelivery, **kwargs):
        if isinstance(response, Exception):
            log.error("lms_bridge signal receiver %r raised %s", receiver, type(response).__name__)


def send_delivery_processed(delivery, result):
    """Send ``delivery_processed`` once the current transaction commits."""
    status, retryable, counts = delivery.status, result.retryable, dict(result.counts)
    transaction.on_commit(lambda: _send_robust(delivery_processed, delivery=delivery, status=status,
                                               retryable=retryable, counts=counts))


def send_enrollment_changed(delivery, request, result):
    """Send ``enrollment_changed`` once the pair's savepoint and its transaction commit."""
    kwargs = {"delivery": delivery, "email": request.email, "course_id": request.course_id,
              "action": request.action, "outcome": str(result.outcome), "mode": result.mode}
    transaction.on_commit(lambda: _send_robust(enrollment_changed, **kwargs))
