"""
HTTP answers: the one place that maps processing results and the view's refusals
to status codes, JSON bodies and ``Retry-After``.

The body, for every answer::

    {"success": bool, "message": str | dict, "delivery": uuid | None,
     "results": [{"courseId", "outcome", "detail"}],   # "email" too when the delivery has several learners
     "counts": {outcome: n}, "pairs": n}               # once processed or accepted

A 503 always carries ``Retry-After`` (at least ``LMS_BRIDGE_RETRY_AFTER_SECONDS``,
longer when an LMS asked us to wait longer).
"""
from dataclasses import dataclass, field

from .conf import get_setting
from .models import DeliveryStatus
from .results import ACCEPTED, IN_PROGRESS, REPLAY, UNAVAILABLE


@dataclass
class Reply:
    """An HTTP answer to a sender: status code, JSON body and extra headers."""

    status: int
    body: dict
    headers: dict = field(default_factory=dict)


def make_reply(status, success, message, delivery=None, results=(), **extra):
    """Build an answer in the webhook's response format (see the module's docstring)."""
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


def _with_retry_after(reply, retry_after):
    """Ask the sender to wait at least what an LMS asked of us (its Retry-After), when that is longer."""
    if retry_after and reply.status == 503:
        reply.headers["Retry-After"] = str(max(int(reply.headers.get("Retry-After", 0)), int(retry_after)))
    return reply


def _pair_results(result):
    """The pairs' outcomes; with the email when the delivery has several learners."""
    several = len({pair.email.lower() for pair in result.pairs}) > 1 or result.pairs_total > len(result.pairs)
    if several:
        return [{"email": p.email, "courseId": p.course_id, "outcome": p.outcome, "detail": p.detail}
                for p in result.pairs]
    return [{"courseId": p.course_id, "outcome": p.outcome, "detail": p.detail} for p in result.pairs]


def reply_for(result):
    """
    The answer for a processing result.

    ========================  ======  =====================================
    result                    status  body
    ========================  ======  =====================================
    processed, ignored        200     success
    partially failed, failed  200     not success (permanent), or 503 when a retry may cure it
    invalid                   400     the message names the field or course
    accepted (queued)         202     the pairs to process
    in progress               202
    unavailable               503     retry later
    replay                    stored  the stored answer, ``Idempotent-Replayed``
    ========================  ======  =====================================
    """
    kind, delivery = result.kind, result.delivery
    if kind == REPLAY:
        status, body = result.stored
        reply = Reply(status, body)
        reply.headers["Idempotent-Replayed"] = "true"
        if status == 503:
            reply.headers["Retry-After"] = str(get_setting("LMS_BRIDGE_RETRY_AFTER_SECONDS"))
        return reply
    if kind == DeliveryStatus.INVALID:
        extra = {"errors": result.errors} if result.errors is not None else {}
        return make_reply(400, False, result.message, delivery, result.invalid, **extra)
    if kind == DeliveryStatus.IGNORED:
        return make_reply(200, True, result.message, delivery)
    if kind in (ACCEPTED, IN_PROGRESS):
        extra = {"pairs": result.pairs_total} if result.pairs_total else {}
        return make_reply(202, True, result.message, delivery, **extra)
    if kind == UNAVAILABLE:
        return _with_retry_after(make_reply(503, False, result.message, delivery), result.retry_after)
    extra = {"counts": result.counts, "pairs": result.pairs_total}
    if not result.pairs_listed_all:
        extra["results_truncated"] = True
    status = 200 if result.succeeded or not result.retryable else 503
    reply = make_reply(status, result.succeeded, result.message, delivery, _pair_results(result), **extra)
    return _with_retry_after(reply, result.retry_after)
