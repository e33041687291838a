"""
Recording deliveries: the audit row every request to a known source leaves.

dj-stripe's lesson: record first, trust later. Unverified requests are kept
(bounded) as evidence; verified ones are stored whole so they can be
processed, retried and reprocessed from the record alone.
"""
import hashlib
import ipaddress
import logging
import re
from contextlib import nullcontext

from django.db import IntegrityError, router, transaction

from .conf import get_setting
from .models import DeliveryStatus, WebhookDelivery, idempotency_key_for
from .monitoring import record_delivery

log = logging.getLogger(__name__)

MAX_EVENT_ID_CHARS = 255
OUTSIDE_BMP_RE = re.compile("[\U00010000-\U0010FFFF]")


def _json_escape(match):
    code = ord(match.group(0)) - 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def storable_text(text):
    """
    ``text`` with every character outside the Basic Multilingual Plane (an
    emoji, say) written as a JSON ``\\uXXXX\\uXXXX`` escape.

    Installs that predate Tutor's move to ``utf8mb4`` keep ``utf8mb3`` tables,
    which cannot hold a 4-byte UTF-8 character: storing one fails, so such a
    delivery could never be recorded, answered or retried. Such characters can
    only stand inside JSON strings, where the escape is the same character, so
    the stored body parses to exactly what was sent (``body_sha256`` remains
    the hash of the bytes received).
    """
    if text.isascii():  # the usual body (JSON encoders escape by default); answered without a scan
        return text
    return OUTSIDE_BMP_RE.sub(_json_escape, text)


def clean_remote_addr(value):
    """Return ``value`` when it is an IP address, else None."""
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def _event_id_for_audit(value):
    """A claimed event id, kept printable and bounded (it is unverified input)."""
    if not isinstance(value, str):
        return ""
    return value.encode("ascii", "replace").decode("ascii")[:MAX_EVENT_ID_CHARS]


def record_rejected(source, body, remote_addr, claimed_event_id, reason, reply, status=DeliveryStatus.REJECTED):
    """
    Record a request that will not be processed.

    Arguments:
        source (str): the source slug.
        body (bytes): what was read of the body (possibly nothing).
        remote_addr (str | None): the client's address.
        claimed_event_id (str | None): the event id header, unverified.
        reason (str): why it was refused (stored, never sent).
        reply (Reply): the answer the sender gets.
        status (DeliveryStatus): REJECTED, or CONFLICT for a reused id.

    Returns:
        WebhookDelivery
    """
    limit = get_setting("LMS_BRIDGE_REJECTED_BODY_BYTES")
    record_delivery(source, status)
    return WebhookDelivery.objects.create(
        source=source,
        event_id=_event_id_for_audit(claimed_event_id),
        remote_addr=clean_remote_addr(remote_addr),
        signature_valid=status == DeliveryStatus.CONFLICT,
        signature_detail=reason[:255],
        body=storable_text(body[:limit].decode("utf-8", "replace")),
        body_truncated=len(body) > limit,
        body_sha256=hashlib.sha256(body).hexdigest(),
        status=status,
        response_status=reply.status,
        response_body=reply.body,
    )


def record_verified(source, body, remote_addr, verification, headers=None):
    """
    Record an authentic delivery, exactly once per (source, event id), with the
    request headers its payload format reads (``headers``).

    Returns:
        tuple[WebhookDelivery, bool]: the delivery, and whether this call
        created it (False: the sender had already delivered this event id).
    """
    key = idempotency_key_for(verification.event_id) if verification.event_id else None
    # Inserted first: a sender's retry (the rare case) meets the unique index and is looked up then.
    try:
        text = storable_text(body.decode("utf-8"))
        stored_exactly = True
    except UnicodeDecodeError:
        # Kept for the audit, but it can never be processed (see processing).
        text = body.decode("utf-8", "replace")
        stored_exactly = False
    # In autocommit (the view) the INSERT is its own transaction; inside a transaction,
    # a savepoint keeps it usable when a concurrent copy of this delivery won the race.
    connection = transaction.get_connection(router.db_for_write(WebhookDelivery))
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            delivery = WebhookDelivery.objects.create(
                source=source,
                event_id=verification.event_id or "",
                idempotency_key=key,
                remote_addr=clean_remote_addr(remote_addr),
                signature_valid=True,
                secret_index=verification.secret_index,
                body=text,
                body_truncated=not stored_exactly,
                body_sha256=hashlib.sha256(body).hexdigest(),
                status=DeliveryStatus.RECEIVED,
                headers=headers or {},
            )
    except IntegrityError:
        if key is None:
            raise
        return WebhookDelivery.objects.get(source=source, idempotency_key=key), False
    return delivery, True
