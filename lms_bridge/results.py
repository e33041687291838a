"""
What processing makes of a delivery: domain results, which ``responses`` maps to HTTP answers.
"""
from dataclasses import dataclass, field

from .models import DeliveryStatus, WebhookDelivery

# What a result is, beyond a delivery's final statuses.
ACCEPTED = "accepted"        # queued for a Celery worker
IN_PROGRESS = "in_progress"  # another process holds it
UNAVAILABLE = "unavailable"  # cannot be processed now (LMS unreachable, source closed); retryable
REPLAY = "replay"            # nothing to redo: the stored answer


@dataclass
class PairResult:
    """What came of one learner-course pair."""

    email: str
    course_id: str
    outcome: str
    detail: str = ""


@dataclass
class DeliveryResult:
    """
    What processing made of a delivery, for whoever asked (the view, admin, a task).

    Attributes:
        kind (str): a final ``DeliveryStatus`` (processed, partially_failed,
            failed, invalid, ignored), or ACCEPTED, IN_PROGRESS, UNAVAILABLE, REPLAY.
        retryable (bool): a later attempt may succeed (the sender should retry).
        message (str | dict): for the sender (a dict: errors by field).
        pairs (list[PairResult]): the pairs' outcomes (at most MAX_LISTED_PAIRS).
        counts (dict): pairs by outcome, over the whole delivery.
        invalid (list[dict]): for an invalid delivery, the courses that made it so.
        stored (tuple | None): for REPLAY, the stored (status, body).
    """

    kind: str
    delivery: WebhookDelivery | None = None
    message: object = ""
    retryable: bool = False
    pairs: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    pairs_total: int = 0
    pairs_listed_all: bool = True
    retry_after: int | None = None
    errors: dict | None = None
    invalid: list = field(default_factory=list)
    stored: tuple | None = None

    @property
    def succeeded(self):
        return self.kind in (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED, ACCEPTED, IN_PROGRESS)
