"""
The sweeper: what a broker that was down or a worker that died left behind.

It queues again (or, without Celery, processes here) every verified delivery
left ``received`` for longer than ``LMS_BRIDGE_SWEEP_AFTER_SECONDS``, every
one whose lease expired (``processing`` with no sign of life for
``LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS``), and every chunk whose lease expired
while the other chunks of its delivery went on (a worker killed while on it).
Run by the ``lms_bridge.sweep`` Celery beat task, or by ``manage.py lms_bridge_sweep``.
"""
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .conf import get_setting
from .models import ChunkStatus, DeliveryChunk, DeliveryStatus, WebhookDelivery

log = logging.getLogger(__name__)

MAX_PER_SWEEP = 10_000


@dataclass
class SweepReport:
    """What one sweep did."""

    queued: int = 0
    processed: int = 0
    failed_to_queue: int = 0
    chunks: int = 0


def stranded(older_than=None):
    """The deliveries the sweeper takes: left received, or processing with an expired lease."""
    now = timezone.now()
    older_than = get_setting("LMS_BRIDGE_SWEEP_AFTER_SECONDS") if older_than is None else older_than
    stale = now - timedelta(seconds=get_setting("LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS"))
    return WebhookDelivery.objects.filter(signature_valid=True, body_truncated=False).filter(
        Q(status=DeliveryStatus.RECEIVED, received_at__lte=now - timedelta(seconds=older_than))
        | Q(status=DeliveryStatus.PROCESSING, processing_started_at__lt=stale),
    ).order_by("received_at")


def stranded_chunks():
    """(delivery id, chunk number) of the chunks whose lease expired in a delivery still processing."""
    return DeliveryChunk.objects.filter(
        status=ChunkStatus.PROCESSING, lease_expires_at__lt=timezone.now(), delivery__status=DeliveryStatus.PROCESSING,
    ).order_by("delivery_id", "number").values_list("delivery_id", "number")


def sweep(older_than=None, enqueue=None, enqueue_chunk=None):
    """
    Queue (or process) the stranded deliveries, oldest first, then the stranded chunks.

    Arguments:
        older_than (int | None): seconds a delivery must have been left ``received``.
        enqueue (callable | None): queues a delivery by id, True when the broker
            took it (``tasks.enqueue_delivery``); None processes them here.
        enqueue_chunk (callable | None): queues a chunk by (delivery id, number)
            (``tasks.enqueue_chunk``); None processes them here.

    Returns:
        SweepReport
    """
    # pylint: disable=import-outside-toplevel
    from .processing import process_chunk, process_delivery

    report = SweepReport()
    for delivery in stranded(older_than)[:MAX_PER_SWEEP]:
        if enqueue is None:
            process_delivery(delivery)
            report.processed += 1
        elif enqueue(delivery.pk):
            report.queued += 1
        else:
            report.failed_to_queue += 1
    for delivery_id, number in stranded_chunks()[:MAX_PER_SWEEP]:
        report.chunks += 1
        if enqueue_chunk is None:
            process_chunk(delivery_id, number)  # a pair that must wait stays ``retry``: the next sweep
        elif not enqueue_chunk(delivery_id, number):
            report.failed_to_queue += 1
    if report.queued or report.processed or report.failed_to_queue or report.chunks:
        log.info("lms_bridge sweep: %s queued, %s processed here, %s chunk(s) resumed, %s could not be queued",
                 report.queued, report.processed, report.chunks, report.failed_to_queue)
    return report
