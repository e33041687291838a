"""
The audit trail: every webhook delivery and every per-course operation.

A delivery is recorded as soon as it reaches a known source, verified or
not (an unverified one is kept only as evidence and is never processed).
Verified deliveries are unique per (source, idempotency key): the database,
not the application, is what makes a retried or duplicated delivery take
effect exactly once, across processes and machines.
"""
import hashlib
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class DeliveryStatus(models.TextChoices):
    """Where a delivery is in its life."""

    REJECTED = "rejected", _("Rejected (not authentic or not acceptable)")
    CONFLICT = "conflict", _("Conflict (id reused with another body)")
    RECEIVED = "received", _("Received")
    PROCESSING = "processing", _("Processing")
    INVALID = "invalid", _("Invalid payload")
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored (needs no action)")
    PARTIALLY_FAILED = "partially_failed", _("Partially failed")
    FAILED = "failed", _("Failed")


class Outcome(models.TextChoices):
    """What happened to one course of one delivery."""

    PENDING = "pending", _("Pending")
    ENROLLED = "enrolled", _("Enrolled")
    ALREADY_ENROLLED = "already_enrolled", _("Already enrolled")
    MODE_CHANGED = "mode_changed", _("Mode changed")
    ALLOWED = "allowed", _("Allowed to enroll (no active account yet)")
    ALREADY_ALLOWED = "already_allowed", _("Already allowed to enroll")
    UNENROLLED = "unenrolled", _("Unenrolled")
    NOT_ENROLLED = "not_enrolled", _("Was not enrolled")
    REFUSED = "refused", _("Refused")
    FAILED = "failed", _("Failed")
    RETRY = "retry", _("Failed, will succeed on retry")


SUCCESSFUL_OUTCOMES = frozenset({
    Outcome.ENROLLED,
    Outcome.ALREADY_ENROLLED,
    Outcome.MODE_CHANGED,
    Outcome.ALLOWED,
    Outcome.ALREADY_ALLOWED,
    Outcome.UNENROLLED,
    Outcome.NOT_ENROLLED,
})


def learner_key_for(email):
    """
    Return the stored key of a learner's email in a delivery: the hash of its lower-case form.

    Emails that differ only in case are one learner; emails that differ in
    accents or letter width are others, though MySQL's collations would take
    them for one in a unique index on the email itself.
    """
    return hashlib.sha256(email.lower().encode("utf-8")).hexdigest()


def idempotency_key_for(event_id):
    """
    Return the stored form of a sender's delivery id.

    Hashed, so that ids that differ only in case stay distinct under MySQL's
    case-insensitive collations, and so the unique index has a fixed width.
    """
    return hashlib.sha256(event_id.encode("utf-8")).hexdigest()


class WebhookDelivery(models.Model):
    """
    One HTTP request that reached a configured webhook source.

    .. pii: The body holds the learner's email, and optionally username, first and last name;
        remote_addr is the sender's IP address (a server, usually). When Open edX retires the learner
        (USER_RETIRE_LMS_MISC), lms_bridge.retirement removes their email and names from the body;
        lms_bridge_purge_deliveries deletes old rows.
    .. pii_types: email_address, username, name, ip
    .. pii_retirement: local_api
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of its own: the unique (source, idempotency_key) index starts with it.
    source = models.CharField(max_length=64)
    # Searched in admin by substring (no index serves that); found exactly by idempotency_key.
    event_id = models.CharField(
        max_length=255, blank=True, default="",
        help_text=_("The sender's delivery id (webhook-id), as received."),
    )
    idempotency_key = models.CharField(  # noqa: DJ001 (NULL, unlike "", never collides in the unique index)
        max_length=64, null=True, blank=True, editable=False,
        help_text=_("Hash of the event id; set only for verified deliveries that carry one."),
    )
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    signature_valid = models.BooleanField(default=False)
    signature_detail = models.CharField(max_length=255, blank=True, default="")
    secret_index = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Which configured secret matched (0 = the first)."),
    )
    body = models.TextField(blank=True, default="")
    body_truncated = models.BooleanField(
        default=False,
        help_text=_("The body is not stored exactly (cut to size, or not UTF-8): it cannot be processed."),
    )
    body_sha256 = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=32, choices=DeliveryStatus.choices, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    retryable = models.BooleanField(
        default=False,
        help_text=_("A failure a later attempt may cure (the sender's retry, the task's or the sweeper's)."),
    )
    headers = models.JSONField(
        default=dict, blank=True, help_text=_("The request headers the source's payload format reads."),
    )
    pairs_total = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Learner-course pairs the delivery asks for, once validated."),
    )

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ("-received_at", "-id")
        # Nobody edits or deletes the audit trail (admin offers neither); support staff may reprocess.
        default_permissions = ("view",)
        permissions = [("reprocess_webhookdelivery", _("Can reprocess failed or invalid deliveries"))]
        constraints = [
            # NULL keys (unverified or id-less deliveries) never collide, on
            # every database: this is what makes a delivery exactly-once.
            models.UniqueConstraint(fields=("source", "idempotency_key"), name="lms_bridge_delivery_unique_event"),
        ]

    def __str__(self):
        return f"{self.source} delivery {self.uuid} ({self.status})"


class EnrollmentOperation(models.Model):
    """
    What one delivery asked for one course, and what came of it.

    .. pii: email is the learner's email address, replaced when Open edX retires the learner
        (lms_bridge.retirement, on USER_RETIRE_LMS_MISC).
    .. pii_types: email_address
    .. pii_retirement: local_api
    """

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="operations")
    course_id = models.CharField(max_length=255, db_index=True)
    email = models.CharField(max_length=254, db_index=True)
    learner_key = models.CharField(
        max_length=64, editable=False, default="",
        help_text=_("Hash of the lower-case email: one learner per delivery."),
    )
    chunk = models.PositiveIntegerField(default=0, help_text=_("The part of the delivery a task processes."))
    action = models.CharField(max_length=16)
    mode = models.CharField(max_length=100, blank=True, default="")
    backend = models.CharField(max_length=255, blank=True, default="")
    outcome = models.CharField(max_length=32, choices=Outcome.choices, default=Outcome.PENDING, db_index=True)
    detail = models.TextField(blank=True, default="", help_text=_("What the sender is told."))
    error = models.TextField(
        blank=True, default="", help_text=_("Internal error text, for support staff only; never sent back."),
    )
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("enrollment operation")
        ordering = ("delivery", "id")
        default_permissions = ("view",)
        permissions = [("export_enrollmentoperation", _("Can export enrollment operations as CSV"))]
        constraints = [
            models.UniqueConstraint(fields=("delivery", "learner_key", "course_id"),
                                    name="lms_bridge_operation_unique_pair"),
        ]
        indexes = [models.Index(fields=("delivery", "chunk", "outcome"), name="lms_bridge_op_chunk")]

    def __str__(self):
        return f"{self.action} {self.course_id}: {self.outcome}"

    def save(self, *args, **kwargs):
        if not self.learner_key and self.email:
            self.learner_key = learner_key_for(self.email)
        super().save(*args, **kwargs)

    @property
    def succeeded(self):
        """True when the operation reached a successful outcome (it is never redone)."""
        return self.outcome in SUCCESSFUL_OUTCOMES


class ChunkStatus(models.TextChoices):
    """Where a part of a delivery is."""

    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing")
    DONE = "done", _("Done")


class DeliveryChunk(models.Model):
    """
    A part of a large delivery that one Celery task processes (several workers share a delivery).

    .. no_pii: counts and states only.
    """

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    pairs = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=255, blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery chunk")
        ordering = ("delivery", "number")
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(fields=("delivery", "number"), name="lms_bridge_chunk_unique_number"),
        ]

    def __str__(self):
        return f"chunk {self.number} ({self.status})"
