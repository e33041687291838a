"""
Celery tasks (``pip install lms-bridge[celery]``): found by the LMS's Celery app
(``autodiscover_tasks``), run by its workers.

Every task is idempotent (a pair already done is never redone: the database's
claims and unique constraints see to it), ``acks_late`` with redelivery when a
worker is lost, and calls the same processing code as the webhook view.

``lms_bridge.process_delivery``
    Claims, validates and plans a delivery, splits what is left to change into
    chunks of ``LMS_BRIDGE_CHUNK_PAIRS``, queues a task per chunk but the first,
    and processes the first.
``lms_bridge.process_chunk``
    Processes one chunk; a transient failure is retried with exponential backoff
    and jitter (at least an LMS's Retry-After), up to ``LMS_BRIDGE_TASK_MAX_RETRIES``
    times; then the pairs stay ``retry`` and the delivery fails (admin "reprocess"
    queues it again). The last chunk done finishes the delivery.
``lms_bridge.sweep``
    Queues deliveries left ``received`` or whose lease expired, and chunks whose
    lease expired (for Celery beat).

A broker that is down loses nothing: a delivery is recorded before it is
queued, a failed publish is logged, and the sweeper queues it again.
"""
import contextlib
import logging
import os
import threading

from celery import shared_task

from . import processing
from .conf import get_setting

log = logging.getLogger(__name__)

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}
# One quick retry of a publish; past that the sweeper takes over.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


@shared_task(name="lms_bridge.process_delivery", bind=True, **TASK_OPTIONS)
def process_delivery_task(self, delivery_id):
    """Start (or resume) a delivery."""
    numbers = processing.start_delivery(delivery_id)
    for number in numbers[1:]:
        enqueue_chunk(delivery_id, number)
    if numbers:
        run_chunk(delivery_id, numbers[0], 0, self.request.id)


@shared_task(name="lms_bridge.process_chunk", bind=True, **TASK_OPTIONS)
def process_chunk_task(self, delivery_id, number, retries=0):
    """Process one chunk of a delivery."""
    run_chunk(delivery_id, number, retries, self.request.id)


@shared_task(name="lms_bridge.sweep", ignore_result=True)
def sweep_task():
    """Queue what was left behind (a broker that was down, a worker that died)."""
    from .sweeping import sweep  # pylint: disable=import-outside-toplevel

    sweep(enqueue=enqueue_delivery, enqueue_chunk=enqueue_chunk)


def run_chunk(delivery_id, number, retries, task_id=None):
    """Process a chunk, and queue it again when it must be retried or another process holds it."""
    result = processing.process_chunk(delivery_id, number, final=retries >= get_setting("LMS_BRIDGE_TASK_MAX_RETRIES"),
                                      task_id=task_id or "")
    if result.state == "retry":
        enqueue_chunk(delivery_id, number, retries + 1, processing.backoff_seconds(retries, result.retry_after))
    elif result.state == "busy":
        # Another worker holds its lease: look again once it ends (it is renewed while that worker works).
        enqueue_chunk(delivery_id, number, retries, result.retry_after)


def _options(countdown=None):
    """apply_async's options: a short publish retry, the configured queue, a countdown."""
    options = {"retry": True, "retry_policy": PUBLISH_RETRY_POLICY}
    queue = get_setting("LMS_BRIDGE_CELERY_QUEUE")
    if queue:
        options["queue"] = queue
    if countdown:
        options["countdown"] = countdown
    return options


class _Publisher(threading.local):
    """
    This thread's producer on the broker, made on first use in this process: a
    publish costs no pool checkout and no new connection object. After a fork
    (gunicorn, Celery's prefork pool) the child makes its own.
    """

    pid = None
    producer = None

    def get(self, app):
        if self.pid != os.getpid() or self.producer is None:
            self.producer = app.amqp.Producer(app.connection_for_write())
            self.pid = os.getpid()
        return self.producer

    def forget(self):
        """Drop the producer (after a failure): the next publish makes a new one."""
        producer, self.producer = self.producer, None
        if producer is not None and self.pid == os.getpid():
            try:
                producer.connection.release()
            except Exception as exc:  # pylint: disable=broad-except
                log.debug("lms_bridge: closing a broken broker connection: %s", type(exc).__name__)


_publisher = _Publisher()


def _publish(task, args, countdown=None):
    """Publish one task message (a short retry on a lost connection); raises when the broker cannot take it."""
    options = _options(countdown)
    producer = _publisher.get(task.app)
    # The task's queue is declared on the first publish over a connection, not on
    # every one (Celery would bind and look up a copy of it each time). The mark
    # lives in the connection's own set of declared entities, which kombu empties
    # when it reconnects: then the next publish declares again.
    mark = ("lms_bridge", task.name, options.get("queue"))
    declared = mark in producer.connection.declared_entities
    if declared:
        options["declare"] = []
    try:
        # argsrepr: the ids as they are, instead of Celery's saferepr (ids only: nothing to hide).
        task.apply_async(args=args, producer=producer, argsrepr=repr(args), kwargsrepr="{}", **options)
    except Exception:
        _publisher.forget()
        raise
    # Marked when this publish declared it; one that did not, on a connection kombu
    # made again meanwhile, leaves the (emptied) set as it is: the next one declares.
    if not declared:
        producer.connection.declared_entities.add(mark)
    _share_publish_client(producer.channel)


def _share_publish_client(channel):
    """
    kombu's Redis channel builds a new redis-py client, on its one connection pool,
    for every message it puts; building one (its table of reply callbacks) costs
    more than the LPUSH it sends. This thread's publishing channel gets one client
    for all of them, on that same pool. Done once per channel (a channel kombu
    opens again after losing the broker gets it on its first publish); any other
    transport is left as it is.
    """
    if "_lms_bridge_client" in vars(channel) or not type(channel).__module__.startswith("kombu.transport.redis"):
        return
    create_client = getattr(channel, "_create_client", None)
    if create_client is None or not hasattr(channel, "conn_or_acquire"):
        return
    shared = channel._lms_bridge_client = create_client()

    @contextlib.contextmanager
    def conn_or_acquire(client=None):  # kombu's signature: some callers name the argument
        yield client or shared

    channel.conn_or_acquire = conn_or_acquire


def enqueue_delivery(delivery_id):
    """Queue a delivery's first task; False (logged) when the broker cannot take it."""
    try:
        _publish(process_delivery_task, (delivery_id,))
    except Exception as exc:  # pylint: disable=broad-except
        log.warning("lms_bridge could not queue delivery %s (%s); the sweeper will", delivery_id, type(exc).__name__)
        return False
    return True


def enqueue_chunk(delivery_id, number, retries=0, countdown=None):
    """Queue one chunk's task; False (logged) when the broker cannot take it."""
    try:
        _publish(process_chunk_task, (delivery_id, number, retries), countdown)
    except Exception as exc:  # pylint: disable=broad-except
        log.warning("lms_bridge could not queue chunk %s of delivery %s (%s); the sweeper will", number,
                    delivery_id, type(exc).__name__)
        return False
    return True
