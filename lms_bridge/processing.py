"""
Processing a recorded delivery: parse it with its source's format, validate it whole, then change
only the learner-course pairs that need it.

This is the one piece of code that acts on a delivery; it knows nothing of HTTP
(``responses`` maps its results to answers). The webhook view calls
``dispatch``; admin "reprocess", the sweeper and the Celery tasks call
``process_delivery``, ``start_delivery`` and ``process_chunk``.

The steps:

1. *claim* the delivery with one conditional UPDATE, so only one process works on it;
2. *parse* the body (``formats``) into requests, and *validate* them all (scope,
   backends, courses, modes) with a constant number of queries per backend,
   before anything is changed: a 400 leaves nothing half-done;
3. *read* the current state in bulk (``EnrollmentBackend.settled``, no locks): pairs
   already in the requested state get their outcome in the same INSERT that
   creates the operation rows, with no transaction of their own;
4. *change* the other pairs in bounded batches: for a backend whose effects are
   in this database, one transaction per batch and a savepoint per pair (the
   change, the LMS's audit row and the outcome commit together, and one pair's
   failure undoes no other's); a remote backend holds no transaction across its
   HTTP calls. Each backend prepares a batch in bulk (``EnrollmentBackend.batch``:
   the in-process one locks the batch's accounts in one statement, in id order),
   and a batch's outcomes are written together at its end, in its transaction.
   The claim's lease is renewed after every batch.
5. *finish*: the delivery's status, whether it may be retried, and its answer.

A delivery of up to ``LMS_BRIDGE_BATCH_PAIRS`` pairs on the in-process backend is
steps 1-5 in a single transaction: with the record, two commits per delivery.
"""
import logging
import math
import random
from collections import Counter, defaultdict
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, OperationalError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from opaque_keys import InvalidKeyError

from . import signals
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
from .formats import EnrollmentRequest, Ignored, InvalidPayloadError
from .models import (
    SUCCESSFUL_OUTCOMES,
    ChunkStatus,
    DeliveryChunk,
    DeliveryStatus,
    EnrollmentOperation,
    Outcome,
    WebhookDelivery,
    learner_key_for,
)
from .monitoring import record_delivery
from .registry import RegistryError, get_all_backends, select_backends
from .results import ACCEPTED, IN_PROGRESS, REPLAY, UNAVAILABLE, DeliveryResult, PairResult
from .serializers import parse_course_key

log = logging.getLogger(__name__)

ALLOWANCE_OUTCOMES = frozenset({Outcome.ALLOWED, Outcome.ALREADY_ALLOWED})
CHANGED_OUTCOMES = frozenset({Outcome.ENROLLED, Outcome.MODE_CHANGED, Outcome.ALLOWED, Outcome.UNENROLLED})
OPEN_OUTCOMES = (Outcome.PENDING, Outcome.RETRY)
FAILED_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.PARTIALLY_FAILED)
# Pairs listed in a result (and a stored answer): past it, only those that did not succeed.
MAX_LISTED_PAIRS = 1000
# Existing operation rows updated by one statement when a delivery is planned again (within any database's
# limit on query parameters).
ROWS_PER_UPDATE = 500


class _InvalidDeliveryError(Exception):
    """The delivery cannot be processed as sent (a 400, nothing changed)."""

    def __init__(self, message, invalid=(), errors=None):
        super().__init__(message)
        self.message, self.invalid, self.errors = message, list(invalid), errors


class _UnavailableError(Exception):
    """The delivery cannot be processed now; a later attempt may (a 503)."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


@dataclass
class _Plan:
    """A claimed delivery's requests, their backends, and what is left to change."""

    delivery: WebhookDelivery
    requests: list
    backends: dict  # course id -> EnrollmentBackend
    context: OperationContext
    outcomes: dict  # index -> (outcome, detail)
    todo: list      # indexes of the requests to change


# Entry points ---------------------------------------------------------------------------------


def dispatch(delivery, fresh=False):
    """
    What the webhook view does with a verified, recorded delivery: process it now
    (``MODE`` sync), or validate it and queue it for a Celery worker (async).

    Arguments:
        delivery (WebhookDelivery): verified and recorded.
        fresh (bool): this request created it (no earlier attempt exists).

    Returns:
        DeliveryResult
    """
    source = get_source(delivery.source)
    if source is None or not source.is_open:
        return process_delivery(delivery, fresh=fresh)
    if not fresh and not (delivery.status == DeliveryStatus.RECEIVED
                          or (delivery.status in FAILED_STATUSES and delivery.retryable)):
        return process_delivery(delivery)  # in progress or done: the claim says so
    try:
        requests = _parse(delivery, source)
    except (_InvalidDeliveryError, Ignored) as exc:
        return process_delivery(delivery, fresh=fresh, requests=exc)  # recorded as such, not parsed again
    if not source.runs_async(len(requests)):
        return process_delivery(delivery, fresh=fresh, requests=requests)
    try:
        _validate(requests, source, recent=True)
    except (_InvalidDeliveryError, _UnavailableError):
        return process_delivery(delivery, fresh=fresh, requests=requests)
    if delivery.status in FAILED_STATUSES:
        requeue(delivery)
    # The caller queues it (``tasks.enqueue_delivery``, on commit).
    return DeliveryResult(ACCEPTED, delivery, f"Accepted: {len(requests)} learner-course pair(s) will be processed",
                          pairs_total=len(requests))


def process_delivery(delivery, reprocess=False, fresh=False, requests=None):
    """
    Process a verified delivery now, whole, in this process; or say why it is not processed now.

    Arguments:
        delivery (WebhookDelivery): a verified delivery.
        reprocess (bool): support staff's "reprocess": also take deliveries
            that failed permanently or were invalid, and redo every pair that
            did not succeed.
        fresh (bool): the caller created the delivery just now (no operations exist).
        requests (list | Exception | None): the parsed requests when the caller has
            them, or what parsing raised (``Ignored``, an invalid payload).

    Returns:
        DeliveryResult
    """
    _clear_request_cache()
    source = get_source(delivery.source)
    local = _all_local()
    claim_committed = False
    try:
        with transaction.atomic() if local else nullcontext():
            if not _claim(delivery, reprocess):
                claimed = False
            else:
                claimed = True
                plan_or_result = _prepare(delivery, source, fresh, requests)
                if isinstance(plan_or_result, DeliveryResult):
                    return plan_or_result
                plan = plan_or_result
                batches = _batches(plan.todo)
                if len(batches) <= 1:
                    retry_after = _apply(plan, plan.todo, local)
                    return _finish(plan, retry_after)
        if not claimed:
            return _not_claimed(delivery)
        claim_committed = True
        retry_after = 0
        for batch in batches:
            with transaction.atomic() if local else nullcontext():
                retry_after = max(retry_after, _apply(plan, batch, local) or 0)
                _renew_lease(delivery)
        return _finish(plan, retry_after)
    except OperationalError as exc:
        # The database itself failed (a deadlock, a lost connection): nothing of this
        # attempt's transaction stayed; the next attempt redoes what did not commit.
        log.warning("lms_bridge delivery %s: database error %s; will be retried", delivery.uuid, type(exc).__name__)
        if claim_committed or not local:
            _release(delivery, retryable=True)
        return DeliveryResult(UNAVAILABLE, delivery, "Temporary database error; retry later", retryable=True)
    except BaseException:
        if claim_committed or not local:
            _release(delivery)
        raise


def start_delivery(delivery_id):
    """
    The first Celery task of a delivery: claim, validate and plan it, and split
    what is left to change into chunks (``LMS_BRIDGE_CHUNK_PAIRS`` pairs each).

    Returns:
        list[int]: the numbers of the chunks to process (none when the delivery
        is done, invalid, or held by another process).
    """
    _clear_request_cache()
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        return []
    source = get_source(delivery.source)
    local = _all_local()
    resumed = delivery.status == DeliveryStatus.PROCESSING
    with transaction.atomic() if local else nullcontext():
        if not _claim(delivery, reprocess=False):
            return []
        if resumed and delivery.chunks.exists():
            # A worker died holding it: the chunks not done are queued again (each has its own lease).
            return list(delivery.chunks.exclude(status=ChunkStatus.DONE).values_list("number", flat=True))
        plan_or_result = _prepare(delivery, source, fresh=False)
        if isinstance(plan_or_result, DeliveryResult):
            return []
        plan = plan_or_result
        size = get_setting("LMS_BRIDGE_CHUNK_PAIRS")
        count = math.ceil(len(plan.todo) / size)
        if count == 0:
            _finish(plan, 0)
            return []
        DeliveryChunk.objects.bulk_create(
            [DeliveryChunk(delivery=delivery, number=number, pairs=min(size, len(plan.todo) - number * size))
             for number in range(count)],
            ignore_conflicts=True,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(pairs_total=len(plan.requests),
                                                              processing_started_at=timezone.now())
    return list(range(count))


@dataclass
class ChunkResult:
    """
    What a chunk's task did: ``done``, ``retry`` (after ``retry_after`` seconds) or ``busy``
    (another process holds it; its lease ends in ``retry_after`` seconds).
    """

    state: str
    retry_after: int | None = None
    result: DeliveryResult | None = None


def process_chunk(delivery_id, number, final=False, task_id=""):
    """
    Process the open pairs of one chunk of a delivery (a Celery task's work), then
    finish the delivery if every chunk is done.

    Arguments:
        final (bool): the task's last attempt: pairs still failing transiently
            stay ``retry`` and the chunk is done (the delivery fails; "reprocess" re-queues it).
        task_id (str): the Celery task doing it, shown in admin ("" when not a task).

    Returns:
        ChunkResult
    """
    _clear_request_cache()
    chunk = DeliveryChunk.objects.filter(delivery_id=delivery_id, number=number)
    claimed = chunk.filter(
        Q(status=ChunkStatus.PENDING) | Q(status=ChunkStatus.PROCESSING, lease_expires_at__lt=timezone.now()),
    ).update(status=ChunkStatus.PROCESSING, lease_expires_at=_lease_end(), attempts=F("attempts") + 1,
             task_id=(task_id or "")[:255])
    if not claimed:
        # Held: look again when its lease ends (sooner if the holder finishes; later if it renews).
        lease_end = chunk.filter(status=ChunkStatus.PROCESSING).values_list("lease_expires_at", flat=True).first()
        if lease_end is None:
            return ChunkResult("done")
        remaining = max(0, math.ceil((lease_end - timezone.now()).total_seconds()))
        return ChunkResult("busy", retry_after=min(remaining, get_setting("LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS")) + 1)
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    source = get_source(delivery.source)
    operations = list(delivery.operations.filter(chunk=number, outcome__in=OPEN_OUTCOMES).order_by("id"))
    requests = [_request_of(operation) for operation in operations]
    local = _all_local()
    retry_after = 0
    try:
        backends = select_backends(request.course_id for request in requests)
    except RegistryError:
        backends = {}
    plan = _Plan(delivery, requests, backends, _context(delivery, source), {}, [])
    # Read again, in bulk, in this process (another worker may have planned the delivery, and the
    # state may have moved since): pairs settled now are recorded; the others are changed.
    if all(backends.get(request.course_id) is not None for request in requests):
        settled = _read_settled(delivery, requests, backends, list(range(len(requests))), plan.context)
    else:
        settled = {}
    now_settled = []
    for index, request in enumerate(requests):
        answer = settled.get(index)
        if answer is None:
            plan.todo.append(index)
        else:
            plan.outcomes[index] = (answer.outcome, answer.detail)
            now_settled.append(_OutcomeRow(request, answer.outcome, answer.detail, "", answer.mode,
                                           backends[request.course_id]))
    if now_settled:
        _save_outcomes(delivery, now_settled)
    for batch in _batches(plan.todo):
        with transaction.atomic() if local else nullcontext():
            retry_after = max(retry_after, _apply(plan, batch, local) or 0)
            chunk.update(lease_expires_at=_lease_end())
            _renew_lease(delivery)
    again = any(outcome == Outcome.RETRY for outcome, _ in plan.outcomes.values())
    if again and not final:
        chunk.update(status=ChunkStatus.PENDING)
        return ChunkResult("retry", retry_after)
    chunk.update(status=ChunkStatus.DONE, finished_at=timezone.now())
    return ChunkResult("done", result=_finish_chunked(delivery))


def requeue(delivery):
    """
    "Reprocess" for a delivery that runs on Celery: make it claimable again (the caller queues it).

    Its pairs that did not succeed are planned again; those that did are never redone.
    """
    WebhookDelivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.PROCESSING).filter(
        signature_valid=True, body_truncated=False).update(status=DeliveryStatus.RECEIVED, retryable=False)
    DeliveryChunk.objects.filter(delivery=delivery).exclude(status=ChunkStatus.PROCESSING).delete()


def backoff_seconds(retries, retry_after=None):
    """Exponential backoff with full jitter, capped; never shorter than an LMS's Retry-After."""
    base = get_setting("LMS_BRIDGE_TASK_BACKOFF_SECONDS")
    cap = get_setting("LMS_BRIDGE_TASK_BACKOFF_MAX_SECONDS")
    wait = random.uniform(base, min(cap, base * 2 ** retries))  # jitter, not a secret
    return max(1, math.ceil(max(wait, retry_after or 0)))


def progress(delivery):
    """A delivery's pairs by outcome (one aggregate query): {"total", "done", "pending", <outcome>: n}."""
    counts = dict(delivery.operations.values_list("outcome").annotate(n=Count("id")).order_by())
    total = delivery.pairs_total or sum(counts.values())
    pending = counts.get(Outcome.PENDING, 0) + max(0, total - sum(counts.values()))
    return {"total": total, "done": total - pending, "pending": pending, **counts}


# Claiming -------------------------------------------------------------------------------------


def _claim(delivery, reprocess):
    """Take the delivery for this process, atomically; False when it is not available."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=get_setting("LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS"))
    claimable = (
        Q(status=DeliveryStatus.RECEIVED)
        # The process that claimed it died (or lost its database) mid-way: its lease expired.
        | Q(status=DeliveryStatus.PROCESSING, processing_started_at__lt=stale_before)
        # A transient failure: a later attempt is how it gets done.
        | Q(status__in=FAILED_STATUSES, retryable=True)
    )
    if reprocess:
        claimable |= Q(status__in=(*FAILED_STATUSES, DeliveryStatus.INVALID))
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery.pk, signature_valid=True, body_truncated=False)
        .filter(claimable)
        .update(status=DeliveryStatus.PROCESSING, processing_started_at=now, attempts=F("attempts") + 1,
                retryable=False)
    )
    if claimed:
        delivery.status, delivery.processing_started_at, delivery.retryable = DeliveryStatus.PROCESSING, now, False
        delivery.attempts += 1
    return bool(claimed)


def _lease_end():
    """When a lease taken (or renewed) now expires."""
    return timezone.now() + timedelta(seconds=get_setting("LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS"))


def _renew_lease(delivery):
    """Tell other processes this one still works on the delivery."""
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PROCESSING).update(
        processing_started_at=timezone.now())


def _release(delivery, retryable=False):
    """After an unexpected error, hand the delivery back so that a later attempt can take it."""
    try:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PROCESSING).update(
            status=DeliveryStatus.RECEIVED, retryable=retryable,
        )
    except DatabaseError:
        # The database may be what failed; the lease's expiry covers that case.
        log.warning("lms_bridge could not release delivery %s after an error", delivery.uuid)


def _not_claimed(delivery):
    """The result when this call did not get the delivery: in progress, or the stored answer."""
    delivery.refresh_from_db()
    if delivery.status == DeliveryStatus.PROCESSING:
        return DeliveryResult(IN_PROGRESS, delivery, "This delivery is already being processed",
                              pairs_total=delivery.pairs_total or 0)
    if delivery.response_status is None:
        return DeliveryResult(UNAVAILABLE, delivery, "This delivery cannot be processed now; retry later",
                              retryable=True)
    return DeliveryResult(REPLAY, delivery, stored=(delivery.response_status, delivery.response_body or {}),
                          retryable=delivery.retryable)


# Parsing, validating, planning ---------------------------------------------------------------


def _parse(delivery, source):
    """The delivery's requests, by its source's format."""
    try:
        return source.build_format().parse(delivery.body, delivery.headers or {})
    except InvalidPayloadError as exc:
        raise _InvalidDeliveryError(exc.message, errors=exc.errors) from None


def _validate(requests, source, recent=False):
    """
    Check every pair before anything is changed, so that a 400 leaves nothing
    half-done: the source may ask for the action and the course (its
    ``ACTIONS`` and ``COURSES``), and each course needs a backend, must exist,
    and must offer the mode. One ``existing_courses`` and one
    ``supported_modes`` call per backend.

    Arguments:
        recent (bool): trust what each backend found in the last minute
            (``EnrollmentBackend.found_recently``) and ask only about the rest: the
            async acknowledgement does. Only what exists is kept, so an unknown
            course is a 400 every time; the worker validates the delivery again,
            without it, before it changes anything.

    Returns:
        dict[str, EnrollmentBackend]: by course id.
    """
    for action in sorted({request.action for request in requests}):
        if action not in source.actions:
            raise _InvalidDeliveryError(f"Source '{source.slug}' may not {action} learners")
    # Courses are tracked by id (text) and position: an opaque key's hash reads six of its
    # attributes each time, and equal keys have equal ids.
    courses = {request.course_id: request.course_key for request in requests}  # equal ids: equal keys
    outside = [] if source.courses is None else [
        course_id for course_id in courses if not source.allows_course(course_id)]
    if outside:
        invalid = [{"courseId": key, "outcome": "invalid",
                    "detail": f"Course {key} is outside the scope of source '{source.slug}'"} for key in outside]
        raise _InvalidDeliveryError(invalid[0]["detail"], invalid)
    # (course id, mode) pairs, in request order.
    wanted_modes = list(dict.fromkeys((r.course_id, r.mode) for r in requests if r.mode and r.action == ENROLL))
    try:
        backends = select_backends(courses)
        existing, supported = set(), set()
        for backend in {id(b): b for b in backends.values() if b is not None}.values():
            mine = [course_id for course_id, other in backends.items() if other is backend]
            found, offered = _ask_backend(backend, courses, mine,
                                          {pair for pair in wanted_modes if backends[pair[0]] is backend}, recent)
            existing |= found
            supported |= offered
    except (BackendError, RegistryError, OperationalError) as exc:
        # Transient, or a configuration the operator must fix: either way a later
        # attempt (the sender's retry, a task's, "reprocess") does it once the LMS answers.
        level = logging.ERROR if isinstance(exc, (BackendConfigurationError, RegistryError)) else logging.WARNING
        log.log(level, "lms_bridge: cannot check courses now (%s: %s)", type(exc).__name__, _loggable(exc))
        raise _UnavailableError("The LMS cannot be reached now; retry later",
                                getattr(exc, "retry_after", None)) from None
    invalid = []
    for course_id, backend in backends.items():
        problem = None
        if backend is None:
            problem = f"No LMS is configured for course {course_id}"
        elif course_id not in existing:
            problem = f"Course {course_id} does not exist"
        if problem:
            invalid.append({"courseId": course_id, "outcome": "invalid", "detail": problem})
    reported = {item["courseId"] for item in invalid}
    for course_id, mode in wanted_modes:
        if course_id not in reported and (course_id, mode) not in supported:
            invalid.append({"courseId": course_id, "outcome": "invalid",
                            "detail": f"Course {course_id} does not offer mode '{mode}'"})
    if invalid:
        raise _InvalidDeliveryError(invalid[0]["detail"], invalid)
    return backends


def _ask_backend(backend, keys, course_ids, modes, recent):
    """
    Which of ``course_ids`` exist, and which (course id, mode) pairs of ``modes``
    the backend offers: one ``existing_courses`` and one ``supported_modes`` call
    at most; with ``recent``, only about what it did not find in the last minute.

    Arguments:
        keys (dict): the delivery's course keys, by course id.

    Returns:
        tuple[set, set]: the course ids that exist, the (course id, mode) pairs offered.
    """
    memo = backend.found_recently if recent else None
    found = memo.found(course_ids) if recent else set()
    offered = memo.found(modes) if recent else set()
    ask = [course_id for course_id in course_ids if course_id not in found]
    if ask:
        existing = backend.existing_courses([keys[course_id] for course_id in ask])
        for course_id in ask:
            if keys[course_id] in existing:
                found.add(course_id)
                if recent:
                    memo.put(course_id, True)
    ask_modes = modes - offered
    if ask_modes:
        answer = backend.supported_modes({(keys[course_id], mode) for course_id, mode in ask_modes})
        for course_id, mode in ask_modes:
            if (keys[course_id], mode) in answer:
                offered.add((course_id, mode))
                if recent:
                    memo.put((course_id, mode), True)
    return found, offered


def _context(delivery, source):
    return OperationContext(source=delivery.source, delivery=str(delivery.uuid), event_id=delivery.event_id,
                            force_enrollment=bool(source and source.force_enrollment))


def _prepare(delivery, source, fresh, requests=None):
    """
    Parse, validate and plan a claimed delivery, and write its operation rows.

    Returns:
        _Plan | DeliveryResult: the plan, or the final result of a delivery that
        is invalid, ignored or cannot be processed now.
    """
    if source is None or not source.is_open:
        # Removed or broken since the delivery was recorded: done once the operator fixes it.
        return _store(delivery, DeliveryResult(UNAVAILABLE, delivery, "This webhook source is not configured",
                                               retryable=True), DeliveryStatus.FAILED)
    try:
        if isinstance(requests, Exception):
            raise requests
        if requests is None:
            requests = _parse(delivery, source)
        backends = _validate(requests, source)
    except Ignored as exc:
        return _store(delivery, DeliveryResult(DeliveryStatus.IGNORED, delivery, exc.reason), DeliveryStatus.IGNORED)
    except _InvalidDeliveryError as exc:
        result = DeliveryResult(DeliveryStatus.INVALID, delivery, exc.message, invalid=exc.invalid, errors=exc.errors)
        return _store(delivery, result, DeliveryStatus.INVALID)
    except _UnavailableError as exc:
        result = DeliveryResult(UNAVAILABLE, delivery, exc.message, retryable=True, retry_after=exc.retry_after)
        return _store(delivery, result, DeliveryStatus.FAILED)

    context = _context(delivery, source)
    existing = {} if fresh else {(op.learner_key, op.course_id): op for op in delivery.operations.all()}
    outcomes, todo, open_indexes = {}, [], []
    for index, request in enumerate(requests):
        operation = existing.get((learner_key_for(request.email), request.course_id))
        if operation is not None and operation.succeeded:
            outcomes[index] = (operation.outcome, operation.detail)
        else:
            open_indexes.append(index)
    settled = _read_settled(delivery, requests, backends, open_indexes, context)
    chunk_size = get_setting("LMS_BRIDGE_CHUNK_PAIRS")
    new_rows, changed = [], defaultdict(list)
    for index in open_indexes:
        request, answer = requests[index], settled.get(index)
        operation = existing.get((learner_key_for(request.email), request.course_id))
        chunk = 0
        if answer is None:
            chunk = len(todo) // chunk_size
            todo.append(index)
        else:
            outcomes[index] = (answer.outcome, answer.detail)
        if operation is None:
            new_rows.append(EnrollmentOperation(
                delivery=delivery, course_id=request.course_id, email=request.email,
                learner_key=learner_key_for(request.email), action=request.action,
                mode=(answer.mode if answer is not None and answer.mode else request.mode) or "",
                backend=backends[request.course_id].name, chunk=chunk,
                outcome=answer.outcome if answer is not None else Outcome.PENDING,
                detail=storable_text(answer.detail) if answer is not None else "",
                attempts=1 if answer is not None else 0,
            ))
        else:
            # A retry or a reprocess: the pair's row exists; only its outcome (or its chunk) changes.
            changed[(chunk,) if answer is None else (chunk, answer.outcome, storable_text(answer.detail))].append(
                operation.pk)
    if new_rows:
        EnrollmentOperation.objects.bulk_create(new_rows, batch_size=1000)
    _replan_rows(changed)
    delivery.pairs_total = len(requests)
    return _Plan(delivery, requests, backends, context, outcomes, todo)


def _replan_rows(changed):
    """
    Update the existing rows of a retried or reprocessed delivery: one UPDATE per
    chunk and outcome (of at most ``ROWS_PER_UPDATE`` rows), not one per pair.

    Arguments:
        changed (dict): row ids by ``(chunk,)`` for a pair still to do, or by
            ``(chunk, outcome, detail)`` for one found already in the requested state.
    """
    now = timezone.now()
    for key, ids in changed.items():
        fields = {"chunk": key[0], "modified": now}
        if len(key) > 1:
            fields.update(outcome=key[1], detail=key[2], error="", attempts=F("attempts") + 1)
        for start in range(0, len(ids), ROWS_PER_UPDATE):
            EnrollmentOperation.objects.filter(pk__in=ids[start:start + ROWS_PER_UPDATE]).update(**fields)


def _read_settled(delivery, requests, backends, indexes, context):
    """
    Ask each backend, once for all its pairs, which are already in the requested state.

    Returns:
        dict[int, EnrollmentResult | None]: by request index.
    """
    settled = {}
    for backend, mine in _by_backend(requests, backends, indexes):
        try:
            answers = backend.settled([requests[index] for index in mine], context)
        except Exception as exc:  # pylint: disable=broad-except
            # Reading ahead is an optimization: each pair's change reads again and records what fails.
            log.warning("lms_bridge delivery %s: %s could not read the current state (%s: %s)", delivery.uuid,
                        backend.name, type(exc).__name__, _loggable(exc))
            answers = [None] * len(mine)
        settled.update(zip(mine, answers, strict=True))
    return settled


def _by_backend(requests, backends, indexes):
    """These requests' indexes grouped by their backend: (backend, indexes) pairs; none for a course without one."""
    groups = {}
    for index in indexes:
        backend = backends.get(requests[index].course_id)
        if backend is not None:
            groups.setdefault(id(backend), (backend, []))[1].append(index)
    return list(groups.values())


def _request_of(operation):
    """The request an operation row stands for (a chunk's task works from the rows, not the body)."""
    try:
        course_key = parse_course_key(operation.course_id)
    except InvalidKeyError:  # validated when the row was written; kept for safety
        course_key = operation.course_id
    return EnrollmentRequest(email=operation.email, course_key=course_key, action=operation.action,
                             mode=operation.mode or None)


def _batches(indexes):
    size = get_setting("LMS_BRIDGE_BATCH_PAIRS")
    return [indexes[start:start + size] for start in range(0, len(indexes), size)]


def _all_local():
    """Whether every configured backend writes to this database (then batches are transactions)."""
    try:
        return all(backend.transactional for backend in get_all_backends())
    except RegistryError:
        return False


def _clear_request_cache():
    """
    Forget what the platform cached about enrollments: outside a web request
    (a task, a command) nothing else clears it between deliveries.
    """
    try:
        from edx_django_utils.cache import RequestCache  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover (a dependency, and the LMS's)
        return
    RequestCache.clear_all_namespaces()


# Changing -------------------------------------------------------------------------------------


def _loggable(exc):
    """An exception's text for the log: backend errors' internal text names no learner; others may."""
    return str(exc) if isinstance(exc, (BackendError, RegistryError)) else "details in the audit trail"


def _internal(exc):
    """A backend error's internal text for support staff, when it says more than the sender's detail."""
    return str(exc) if str(exc) != exc.detail else ""


def _apply(plan, indexes, local):
    """
    Change these pairs, each in its own savepoint (local backends), and record each outcome with it.

    Each backend prepares the batch first (``EnrollmentBackend.batch``). With local
    backends the outcomes are written together at the end, in the batch's transaction:
    they commit with the changes or not at all, in a few statements instead of one
    per pair.

    Returns:
        int: the longest Retry-After an LMS asked for (0 when none).
    """
    retry_after = 0
    outcomes = [] if local else None
    with ExitStack() as batches:
        for backend, mine in _by_backend(plan.requests, plan.backends, indexes):
            batches.enter_context(backend.batch([plan.requests[index] for index in mine], plan.context))
        for index in indexes:
            request = plan.requests[index]
            backend = plan.backends.get(request.course_id)
            outcome, detail, wait = _change(plan, request, backend, local, outcomes)
            retry_after = max(retry_after, wait or 0)
            plan.outcomes[index] = (outcome, detail)
    if outcomes:
        _save_outcomes(plan.delivery, outcomes)
    return retry_after


def _change(plan, request, backend, local, outcomes=None):
    """
    Change one pair and record its outcome: the change, the LMS's audit row and
    the outcome commit together (a savepoint inside the batch's transaction), or
    not at all; a failure is recorded after its savepoint is rolled back.

    Arguments:
        outcomes (list | None): where to put the outcome, for the caller to write
            with the batch's; None to write it now.

    Returns:
        tuple: (outcome, detail, the seconds an LMS asked to wait or None).
    """
    context = plan.context

    def record(outcome, detail, error, mode, backend):
        row = _OutcomeRow(request, outcome, detail, error, mode, backend)
        if outcomes is None:
            _save_outcomes(plan.delivery, [row])
        else:
            outcomes.append(row)

    if backend is None:
        outcome, detail, wait = Outcome.RETRY, "No LMS is configured for this course now", None
        record(outcome, detail, "", None, None)
        return outcome, detail, wait
    learner = Learner(email=request.email, username=request.username, first_name=request.first_name,
                      last_name=request.last_name)
    wait = None
    try:
        with transaction.atomic() if local else nullcontext():
            result = backend.set_enrollment(learner, request.course_key, active=request.action == ENROLL,
                                            mode=request.mode, context=context)
            if result.outcome in CHANGED_OUTCOMES:
                signals.send_enrollment_changed(plan.delivery, request, result)
        record(result.outcome, result.detail, "", result.mode, backend)
        return result.outcome, result.detail, None
    except TransientBackendError as exc:
        # A misconfigured backend is transient too: it works once the operator fixes it.
        if isinstance(exc, BackendConfigurationError):
            log.error("lms_bridge delivery %s, course %s: backend %s is misconfigured: %s",
                      context.delivery, request.course_key, backend.name, exc)
        outcome, detail, error, wait = Outcome.RETRY, exc.detail, _internal(exc), exc.retry_after
    except BackendError as exc:
        outcome, detail, error = Outcome.FAILED, exc.detail, _internal(exc)
    except OperationalError as exc:
        # Lock wait timeouts, deadlocks: worth a retry. When the database undid the whole
        # transaction (not just this savepoint), the batch is redone by a later attempt.
        if local and transaction.get_connection().needs_rollback:
            raise
        outcome, detail, error = Outcome.RETRY, "Temporary database error", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # pylint: disable=broad-except
        # One pair's unexpected failure must not sink the others. The text may hold
        # learner data, so it goes to the audit row, not the log.
        log.error("lms_bridge delivery %s, course %s: unexpected %s in %s",
                  context.delivery, request.course_key, type(exc).__name__, backend.name)
        outcome, detail = Outcome.FAILED, "Unexpected error; support can see it in the audit trail"
        error = f"{type(exc).__name__}: {exc}"
    record(outcome, detail, error, None, backend)
    return outcome, detail, wait


@dataclass(frozen=True)
class _OutcomeRow:
    """A pair's outcome, to be stored on its operation row."""

    request: EnrollmentRequest
    outcome: str
    detail: str
    error: str
    mode: str | None
    backend: object  # EnrollmentBackend | None


def _save_outcomes(delivery, rows):
    """
    Store pairs' outcomes: one UPDATE per course and outcome (or per learner and
    outcome, when that is fewer). Texts from an LMS may hold emoji, which a utf8mb3
    table cannot.
    """
    by_course, by_learner = defaultdict(list), defaultdict(list)
    for row in rows:
        fields = (row.outcome, storable_text(row.detail or ""), storable_text(row.error or ""), row.mode or "",
                  row.backend.name if row.backend is not None else "")
        learner_key = learner_key_for(row.request.email)
        by_course[(fields, row.request.course_id)].append(learner_key)
        by_learner[(fields, learner_key)].append(row.request.course_id)
    per_course = len(by_course) <= len(by_learner)
    now = timezone.now()
    for (fields, key), values in (by_course if per_course else by_learner).items():
        outcome, detail, error, mode, backend = fields
        changes = {"outcome": outcome, "detail": detail, "error": error, "attempts": F("attempts") + 1,
                   "modified": now}
        if mode:
            changes["mode"] = mode
        if backend:
            changes["backend"] = backend
        where = ({"course_id": key, "learner_key__in": values} if per_course
                 else {"learner_key": key, "course_id__in": values})
        EnrollmentOperation.objects.filter(delivery=delivery, **where).update(**changes)


# Finishing ------------------------------------------------------------------------------------


def _summary(action_set, outcomes, single_learner, count):
    """The sender's one-line message for a delivery whose pairs all succeeded."""
    unit = "course(s)" if single_learner else "pair(s)"
    if action_set == {ENROLL} and all(outcome in ALLOWANCE_OUTCOMES for outcome in outcomes):
        return f"Enrollment allowance verified for {count} {unit}"
    if action_set == {ENROLL}:
        return f"User enrollment status verified for {count} {unit}"
    if ENROLL not in action_set:
        return f"Unenrollment verified for {count} {unit}"
    return f"Enrollment status verified for {count} {unit}"


def _result_of(delivery, pairs, counts, total, single_learner, action_set, retry_after=0):
    """The final result of a delivery from its pairs' outcomes (or, when many, their counts)."""
    failed = sum(n for outcome, n in counts.items() if outcome not in SUCCESSFUL_OUTCOMES)
    retryable = counts.get(Outcome.RETRY, 0) > 0
    listed = pairs if total <= MAX_LISTED_PAIRS else [p for p in pairs if p.outcome not in SUCCESSFUL_OUTCOMES]
    listed = listed[:MAX_LISTED_PAIRS]
    if not failed:
        message = _summary(action_set, [p.outcome for p in pairs] if total <= MAX_LISTED_PAIRS else list(counts),
                           single_learner, total)
        return DeliveryResult(DeliveryStatus.PROCESSED, delivery, message, pairs=listed, counts=counts,
                              pairs_total=total, pairs_listed_all=len(listed) == total)
    unit = "course(s)" if single_learner else "learner-course pair(s)"
    message = f"{failed} of {total} {unit} could not be processed"
    if retryable:
        message += "; retry later"
    kind = DeliveryStatus.FAILED if failed == total else DeliveryStatus.PARTIALLY_FAILED
    return DeliveryResult(kind, delivery, message, retryable=retryable, pairs=listed, counts=counts,
                          pairs_total=total, pairs_listed_all=len(listed) == total, retry_after=retry_after or None)


def _finish(plan, retry_after):
    """Sum a plan's outcomes up into the delivery's status and result, and store them."""
    pairs = [PairResult(request.email, request.course_id, *plan.outcomes[index])
             for index, request in enumerate(plan.requests)]
    counts = dict(Counter(pair.outcome for pair in pairs))
    single = len({request.email.lower() for request in plan.requests}) == 1
    result = _result_of(plan.delivery, pairs, counts, len(pairs), single,
                        {request.action for request in plan.requests}, retry_after)
    return _store(plan.delivery, result, result.kind)


def _finish_chunked(delivery):
    """Finish a delivery whose chunks are all done (whichever chunk's task ends last); None if some are not."""
    if delivery.chunks.exclude(status=ChunkStatus.DONE).exists():
        return None
    counts = dict(delivery.operations.values_list("outcome").annotate(n=Count("id")).order_by())
    total = sum(counts.values())
    rows = delivery.operations.order_by("id")
    if total > MAX_LISTED_PAIRS:
        rows = rows.exclude(outcome__in=SUCCESSFUL_OUTCOMES)
    pairs = [PairResult(email, course_id, outcome, detail) for email, course_id, outcome, detail
             in rows.values_list("email", "course_id", "outcome", "detail")[:MAX_LISTED_PAIRS]]
    keys = delivery.operations.values("learner_key").distinct()[:2]
    actions = set(delivery.operations.values_list("action", flat=True).distinct())
    result = _result_of(delivery, pairs, counts, total, len(keys) == 1, actions)
    return _store(delivery, result, result.kind, only_if_processing=True)


def _store(delivery, result, status, only_if_processing=False):
    """Store the final status, whether it may be retried and the answer on the delivery; return the result."""
    from .responses import reply_for  # pylint: disable=import-outside-toplevel

    reply = reply_for(result)
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(pk=delivery.pk)
    if only_if_processing:
        rows = rows.filter(status=DeliveryStatus.PROCESSING)
    updated = rows.update(status=status, retryable=result.retryable, response_status=reply.status,
                          response_body=reply.body, processed_at=now,
                          pairs_total=result.pairs_total or delivery.pairs_total)
    delivery.status, delivery.retryable, delivery.processed_at = status, result.retryable, now
    delivery.response_status, delivery.response_body = reply.status, reply.body
    if updated:
        signals.send_delivery_processed(delivery, result)
        log.info("lms_bridge delivery %s from source %s: %s (attempt %s)", delivery.uuid, delivery.source,
                 status, delivery.attempts)
        record_delivery(delivery.source, status, pairs=delivery.pairs_total)
    return result
