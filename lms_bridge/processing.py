"""
Processing a recorded delivery: validate it, then enroll course by course.

``process_delivery`` is the one piece of code that acts on a delivery. The
webhook view calls it for a new delivery and for a sender's retry; the admin's
"reprocess" action calls it; Celery tasks will call it. It is safe to call
concurrently: a delivery is first *claimed* with one conditional UPDATE, so
only one process works on it at a time, and every course's operation is its
own row and transaction, so a retry redoes only what did not succeed.
"""
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import strict_json
from .backends.base import (
    ENROLL,
    BackendConfigurationError,
    BackendError,
    Learner,
    OperationContext,
    TransientBackendError,
)
from .conf import get_setting, get_source
from .deliveries import storable_text
from .models import SUCCESSFUL_OUTCOMES, DeliveryStatus, EnrollmentOperation, Outcome, WebhookDelivery
from .registry import RegistryError, select_backend
from .serializers import WebhookPayloadSerializer, first_error_message

log = logging.getLogger(__name__)

ALLOWANCE_OUTCOMES = frozenset({Outcome.ALLOWED, Outcome.ALREADY_ALLOWED})
OPERATION_RESULT_FIELDS = ("outcome", "detail", "error", "mode", "backend", "attempts", "modified")


@dataclass
class Reply:
    """An HTTP answer to a sender: status code, JSON body and extra headers."""

    status: int
    body: dict
    headers: dict = field(default_factory=dict)


def make_reply(status, success, message, delivery=None, results=(), **extra):
    """
    Build a reply in the webhook's response format::

        {"success": bool, "message": str | dict, "delivery": uuid | None,
         "results": [{"courseId", "outcome", "detail"}]}
    """
    body = {
        "success": success,
        "message": message,
        "delivery": str(delivery.uuid) if delivery is not None else None,
        "results": list(results),
    }
    body.update(extra)
    headers = {}
    if status == 503:
        headers["Retry-After"] = str(get_setting("LMS_BRIDGE_RETRY_AFTER_SECONDS"))
    return Reply(status, body, headers)


def _pass_retry_after(reply, retry_after):
    """Ask the sender to wait at least what an LMS asked of us (its Retry-After), when that is longer."""
    if retry_after and reply.status == 503:
        reply.headers["Retry-After"] = str(max(int(reply.headers.get("Retry-After", 0)), retry_after))
    return reply


class _InvalidPayloadError(Exception):
    """The payload cannot be processed as sent (400)."""

    def __init__(self, message, results=(), errors=None):
        super().__init__(message)
        self.message = message
        self.results = list(results)
        self.errors = errors


def process_delivery(delivery, reprocess=False):
    """
    Process a verified delivery, or say why it is not processed now.

    Arguments:
        delivery (WebhookDelivery): a verified delivery.
        reprocess (bool): support staff's "reprocess": also take deliveries
            that failed permanently or were invalid, and redo every course
            that did not succeed.

    Returns:
        Reply: the answer for the sender. When another process holds the
        delivery it is 202; when there is nothing to redo it is the stored
        answer, marked ``Idempotent-Replayed``.
    """
    if not _claim(delivery, reprocess):
        delivery.refresh_from_db()
        return _not_claimed_reply(delivery)
    try:
        reply = _process_claimed(delivery)
    except BaseException:
        _release(delivery)
        raise
    log.info(
        "lms_bridge delivery %s from source %s: %s (HTTP %s, attempt %s)",
        delivery.uuid, delivery.source, delivery.status, reply.status, delivery.attempts,
    )
    return reply


def _claim(delivery, reprocess):
    """Take the delivery for this process, atomically; False when it is not available."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=get_setting("LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS"))
    failed = (DeliveryStatus.FAILED, DeliveryStatus.PARTIALLY_FAILED)
    claimable = (
        Q(status=DeliveryStatus.RECEIVED)
        # The process that claimed it died (or lost its database) mid-way.
        | Q(status=DeliveryStatus.PROCESSING, processing_started_at__lt=stale_before)
        # A transient failure: the sender's retry is how it gets done.
        | Q(status__in=failed, response_status=503)
    )
    if reprocess:
        claimable |= Q(status__in=(*failed, DeliveryStatus.INVALID))
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery.pk, signature_valid=True, body_truncated=False)
        .filter(claimable)
        .update(status=DeliveryStatus.PROCESSING, processing_started_at=now, attempts=F("attempts") + 1)
    )
    if claimed:
        delivery.refresh_from_db()
    return bool(claimed)


def _release(delivery):
    """After an unexpected error, hand the delivery back so that a retry can take it."""
    try:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PROCESSING).update(
            status=DeliveryStatus.RECEIVED,
        )
    except Exception:  # pylint: disable=broad-except
        # The database may be what failed; the stale-claim timeout covers that case.
        log.warning("lms_bridge could not release delivery %s after an error", delivery.uuid)


def _not_claimed_reply(delivery):
    """The answer when this call did not get the delivery: in progress, or the stored answer."""
    if delivery.status == DeliveryStatus.PROCESSING:
        return make_reply(202, True, "This delivery is already being processed", delivery)
    if delivery.response_status is None:
        return make_reply(503, False, "This delivery cannot be processed now; retry later", delivery)
    reply = Reply(delivery.response_status, delivery.response_body or {})
    reply.headers["Idempotent-Replayed"] = "true"
    if delivery.response_status == 503:
        reply.headers["Retry-After"] = str(get_setting("LMS_BRIDGE_RETRY_AFTER_SECONDS"))
    return reply


def _process_claimed(delivery):
    """Validate, plan and run a delivery this process has claimed."""
    source = get_source(delivery.source)
    if source is None or not source.is_open:
        # Removed or broken since the delivery was recorded: it is done once the operator fixes it.
        return _finish(delivery, DeliveryStatus.FAILED,
                       make_reply(503, False, "This webhook source is not configured", delivery))
    try:
        data = _validate(delivery)
        plan = _plan(data, source)
    except _InvalidPayloadError as invalid:
        extra = {"errors": invalid.errors} if invalid.errors is not None else {}
        reply = make_reply(400, False, invalid.message, delivery, invalid.results, **extra)
        return _finish(delivery, DeliveryStatus.INVALID, reply)
    except (BackendError, RegistryError, OperationalError) as exc:
        # Transient, or a configuration the operator must fix: either way the
        # sender's retry (or "reprocess") will do it once the LMS answers.
        level = logging.ERROR if isinstance(exc, (BackendConfigurationError, RegistryError)) else logging.WARNING
        log.log(level, "lms_bridge delivery %s: cannot check its courses now (%s: %s)", delivery.uuid,
                type(exc).__name__, _loggable(exc))
        reply = make_reply(503, False, "The LMS cannot be reached now; retry later", delivery)
        return _finish(delivery, DeliveryStatus.FAILED, _pass_retry_after(reply, getattr(exc, "retry_after", None)))

    learner = Learner(
        email=data["email"],
        username=data.get("username", ""),
        first_name=data.get("name", ""),
        last_name=data.get("family", ""),
    )
    context = OperationContext(source=delivery.source, delivery=str(delivery.uuid), event_id=delivery.event_id,
                               force_enrollment=source.force_enrollment)
    operations = _operations(delivery, plan, data)
    retry_after = 0
    for operation, (course_key, backend) in zip(operations, plan, strict=True):
        if not operation.succeeded:
            retry_after = max(retry_after, _run_operation(operation, backend, learner, course_key, data, context) or 0)
    return _finish_operations(delivery, data["action"], operations, retry_after)


def _operations(delivery, plan, data):
    """
    The delivery's operation rows, in plan order, created in one statement.

    Rows that exist (a retry, a reprocess) are kept as they are: the unique
    (delivery, course) constraint ignores the duplicates.
    """
    EnrollmentOperation.objects.bulk_create(
        [
            EnrollmentOperation(
                delivery=delivery, course_id=str(course_key), email=data["email"], action=data["action"],
                mode=data.get("mode") or "", backend=backend.name,
            )
            for course_key, backend in plan
        ],
        ignore_conflicts=True,
    )
    by_course = {operation.course_id: operation for operation in delivery.operations.all()}
    return [by_course[str(course_key)] for course_key, _ in plan]


def _validate(delivery):
    """Parse and validate the stored body; raise _InvalidPayloadError when it cannot be processed."""
    try:
        payload = strict_json.loads(delivery.body)
    except strict_json.StrictJSONError as exc:
        raise _InvalidPayloadError(str(exc)) from None
    if not isinstance(payload, dict):
        raise _InvalidPayloadError("The body must be a JSON object")
    serializer = WebhookPayloadSerializer(data=payload)
    if not serializer.is_valid():
        errors = serializer.errors
        raise _InvalidPayloadError(first_error_message(errors) or errors, errors=errors)
    return serializer.validated_data


def _plan(data, source):
    """
    Check every course before any enrollment is made, so that a 400 leaves
    nothing half-done: the source may ask for the action and the course (its
    ``ACTIONS`` and ``COURSES``), and each course needs a backend, must exist,
    and must offer the mode.

    Returns:
        list[tuple[CourseKey, EnrollmentBackend]]
    """
    if data["action"] not in source.actions:
        raise _InvalidPayloadError(f"Source '{source.slug}' may not {data['action']} learners")
    outside = [str(key) for key in data["courseIds"] if not source.allows_course(key)]
    if outside:
        results = [{"courseId": key, "outcome": "invalid",
                    "detail": f"Course {key} is outside the scope of source '{source.slug}'"} for key in outside]
        raise _InvalidPayloadError(results[0]["detail"], results)
    plan, results = [], []
    mode = data.get("mode")
    backends = {course_key: select_backend(course_key) for course_key in data["courseIds"]}
    existing = set()
    for backend in {id(b): b for b in backends.values() if b is not None}.values():
        existing |= backend.existing_courses([key for key, chosen in backends.items() if chosen is backend])
    for course_key, backend in backends.items():
        problem = None
        if backend is None:
            problem = f"No LMS is configured for course {course_key}"
        elif course_key not in existing:
            problem = f"Course {course_key} does not exist"
        elif mode and data["action"] == ENROLL and not backend.offers_mode(course_key, mode):
            problem = f"Course {course_key} does not offer mode '{mode}'"
        if problem:
            results.append({"courseId": str(course_key), "outcome": "invalid", "detail": problem})
        else:
            plan.append((course_key, backend))
    if results:
        raise _InvalidPayloadError(results[0]["detail"], results)
    return plan


def _loggable(exc):
    """An exception's text for the log: backend errors' internal text names no learner; others may."""
    return str(exc) if isinstance(exc, (BackendError, RegistryError)) else "details in the audit trail"


def _run_operation(operation, backend, learner, course_key, data, context):
    """
    Run one course's operation in its own transaction and record its outcome.

    Returns:
        int | None: the seconds an LMS asked us to wait (its Retry-After), if it did.
    """
    operation.attempts += 1
    operation.backend = backend.name
    operation.error = ""
    try:
        # The enrollment, the LMS's audit row and this operation's outcome
        # commit together, or not at all.
        with transaction.atomic():
            result = backend.set_enrollment(
                learner, course_key, active=data["action"] == ENROLL, mode=data.get("mode"), context=context,
            )
            operation.outcome = result.outcome
            operation.detail = result.detail
            if result.mode:
                operation.mode = result.mode
            _save_outcome(operation)
        return None
    except TransientBackendError as exc:
        # A misconfigured backend is transient too: it works once the operator
        # fixes it, so the sender is told to retry (503) and the operator is told why.
        operation.outcome, operation.detail, operation.error = Outcome.RETRY, exc.detail, _internal(exc)
        if isinstance(exc, BackendConfigurationError):
            log.error("lms_bridge delivery %s, course %s: backend %s is misconfigured: %s",
                      context.delivery, course_key, backend.name, exc)
        _save_outcome(operation)
        return exc.retry_after
    except BackendError as exc:
        operation.outcome, operation.detail, operation.error = Outcome.FAILED, exc.detail, _internal(exc)
    except OperationalError as exc:
        # Lock wait timeouts, deadlocks, a lost connection: worth a retry.
        operation.outcome, operation.detail = Outcome.RETRY, "Temporary database error"
        operation.error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # pylint: disable=broad-except
        # One course's unexpected failure must not sink the others. The text
        # may hold learner data, so it goes to the audit row, not the log.
        operation.outcome, operation.detail = Outcome.FAILED, "Unexpected error; support can see it in the audit trail"
        operation.error = f"{type(exc).__name__}: {exc}"
        log.error(
            "lms_bridge delivery %s, course %s: unexpected %s in %s",
            context.delivery, course_key, type(exc).__name__, backend.name,
        )
    _save_outcome(operation)
    return None


def _save_outcome(operation):
    """Store an operation's outcome; texts from an LMS may hold emoji, which a utf8mb3 table cannot."""
    operation.detail, operation.error = storable_text(operation.detail), storable_text(operation.error)
    operation.save(update_fields=OPERATION_RESULT_FIELDS)


def _internal(exc):
    """A backend error's internal text for support staff, when it says more than the sender's detail."""
    return str(exc) if str(exc) != exc.detail else ""


def _finish_operations(delivery, action, operations, retry_after=0):
    """Sum the operations' outcomes up into the delivery's status and answer."""
    results = [{"courseId": op.course_id, "outcome": op.outcome, "detail": op.detail} for op in operations]
    failed = [op for op in operations if op.outcome not in SUCCESSFUL_OUTCOMES]
    transient = any(op.outcome == Outcome.RETRY for op in failed)
    count = len(operations)
    if not failed:
        if action != ENROLL:
            message = f"Unenrollment verified for {count} course(s)"
        elif all(op.outcome in ALLOWANCE_OUTCOMES for op in operations):
            message = f"Enrollment allowance verified for {count} course(s)"
        else:
            message = f"User enrollment status verified for {count} course(s)"
        return _finish(delivery, DeliveryStatus.PROCESSED, make_reply(200, True, message, delivery, results))
    status = DeliveryStatus.FAILED if len(failed) == count else DeliveryStatus.PARTIALLY_FAILED
    message = f"{len(failed)} of {count} course(s) could not be processed"
    if transient:
        message += "; retry later"
    reply = make_reply(503 if transient else 200, False, message, delivery, results)
    return _finish(delivery, status, _pass_retry_after(reply, retry_after))


def _finish(delivery, status, reply):
    """Store the final status and the answer on the delivery, and return the answer."""
    delivery.status = status
    delivery.response_status = reply.status
    delivery.response_body = reply.body
    delivery.processed_at = timezone.now()
    delivery.save(update_fields=["status", "response_status", "response_body", "processed_at"])
    return reply
