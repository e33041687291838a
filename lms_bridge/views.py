"""
The webhook endpoint: ``POST /api/lms-bridge/v1/webhooks/<source>/``.

A short pipeline: verify the raw body's signature, record the delivery,
then hand it to ``processing.dispatch`` (which validates it and processes it
now, or queues it for a Celery worker); ``responses`` turns the result into the
answer. Nothing is parsed before the signature is checked, and nothing a
sender can send makes it answer 500.
"""
import hashlib
import logging
import time

from django.db import DatabaseError, transaction
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .conf import get_setting, get_source
from .deliveries import record_rejected, record_verified
from .models import DeliveryStatus
from .monitoring import record_delivery
from .processing import dispatch
from .responses import make_reply, reply_for
from .results import ACCEPTED
from .signatures import SignatureError, verify_signature
from .throttling import check_throttle, peek_throttle

log = logging.getLogger(__name__)

JSON_MEDIA_TYPES = ("application/json",)
INVALID_SIGNATURE = "Invalid signature"


def _is_json_media_type(content_type):
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in JSON_MEDIA_TYPES or (media_type.startswith("application/") and media_type.endswith("+json"))


def _declared_length(meta):
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return 0


class AlwaysJSON(BaseContentNegotiation):
    """
    Answer JSON whatever the ``Accept`` header says: a sender's HTTP library
    may send ``Accept: text/html`` or ``*/*``, and a 406 would make it retry
    a delivery that was processed.
    """

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class WebhookView(APIView):
    """
    Receives signed enrollment webhooks for one configured source.

    The signature is the authentication: the view states its own (empty)
    authentication, permission and throttle classes instead of inheriting the
    LMS's DRF defaults (JWT and session auth, which would demand a CSRF token
    or a login). It runs outside ``ATOMIC_REQUESTS`` (Tutor turns it on), so
    the audit row of a failed delivery is not rolled back with the failure.
    """

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = ()
    renderer_classes = (JSONRenderer,)
    content_negotiation_class = AlwaysJSON
    # The body is read raw and parsed strictly after verification, never by DRF.
    parser_classes = ()
    http_method_names = ("post",)

    @classmethod
    def as_view(cls, **initkwargs):
        # APIView.as_view already makes the view CSRF-exempt.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    def http_method_not_allowed(self, request, *args, **kwargs):
        reply = make_reply(405, False, f"Method {request.method} not allowed; use POST")
        return Response(reply.body, status=405, headers={"Allow": "POST"})

    def post(self, request, source):
        """Verify, record, validate and dispatch one delivery."""
        config = get_source(source)
        if config is None:
            reply = make_reply(404, False, "Unknown webhook source")
            return Response(reply.body, status=404)
        try:
            reply = self._handle(request, config)
        except DatabaseError as exc:
            # Never a 2xx for something that was not stored: the sender keeps it and retries.
            # A claim this request could not release expires after the processing
            # timeout, so the retry is asked to wait at least that long.
            log.error("lms_bridge source %s: database error %s; answered 503", config.slug, type(exc).__name__)
            reply = make_reply(503, False, "Temporarily unavailable; retry later")
            reply.headers["Retry-After"] = str(max(get_setting("LMS_BRIDGE_RETRY_AFTER_SECONDS"),
                                                   get_setting("LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS")))
        record_delivery(config.slug, response_status=reply.status)
        return Response(reply.body, status=reply.status, headers=reply.headers)

    def _handle(self, request, config):
        """The pipeline for a known source; returns a Reply."""
        django_request = request._request  # pylint: disable=protected-access
        meta = django_request.META
        remote_addr = meta.get("REMOTE_ADDR")
        headers = django_request.headers
        claimed_id = headers.get("webhook-id")

        # A client already over its refusals budget is answered before a byte
        # is read or verified: what a flood of forged requests costs is bounded
        # per client, whatever the scheme.
        wait = peek_throttle(self._rejected_key(config, remote_addr), get_setting("LMS_BRIDGE_REJECTED_THROTTLE_RATE"))
        if wait:
            return self._too_many_refused(wait)

        max_bytes = config.body_cap()
        if _declared_length(meta) > max_bytes:
            # Refused on the declared length, before a byte of the body is read.
            return self._reject(config, b"", remote_addr, claimed_id, "body too large (declared)",
                                make_reply(413, False, f"Body larger than {max_bytes} bytes"))
        body = self._read_body(django_request, max_bytes)
        if len(body) > max_bytes:
            return self._reject(config, b"", remote_addr, claimed_id, "body too large",
                                make_reply(413, False, f"Body larger than {max_bytes} bytes"))
        if not _is_json_media_type(meta.get("CONTENT_TYPE")):
            return self._reject(config, body, remote_addr, claimed_id, "not JSON",
                                make_reply(415, False, "Content-Type must be application/json"))

        scheme = config.build_scheme() if config.is_open else None
        if scheme is None or not scheme.is_open:
            # Closed, never open: a source with a configuration error (the system
            # checks say which) or without a usable secret accepts nothing.
            reason = config.errors[0][1] if config.errors else "source has no usable secret"
            return self._reject(config, body, remote_addr, claimed_id, f"source closed: {reason}",
                                make_reply(503, False, "This webhook source is not configured"))
        try:
            verification = verify_signature(scheme, body, headers, time.time())
        except SignatureError as exc:
            return self._reject(config, body, remote_addr, claimed_id, str(exc),
                                make_reply(401, False, INVALID_SIGNATURE))

        # Throttled after verification, so forged requests cannot spend a real sender's budget.
        wait = check_throttle(f"source:{config.slug}", config.throttle_rate)
        if wait:
            reply = make_reply(429, False, "Too many deliveries for this source; retry later")
            reply.headers["Retry-After"] = str(wait)
            record_rejected(config.slug, body, remote_addr, claimed_id, "throttled", reply)
            return reply

        kept = {name.lower(): headers[name] for name in config.build_format().kept_headers if name in headers}
        delivery, created = record_verified(config.slug, body, remote_addr, verification, kept)
        if not created and delivery.body_sha256 != hashlib.sha256(body).hexdigest():
            reply = make_reply(
                409, False, "This webhook-id was already delivered with a different body; use a new id",
            )
            record_rejected(config.slug, body, remote_addr, claimed_id, "event id reused with another body",
                            reply, status=DeliveryStatus.CONFLICT)
            return reply
        if created and delivery.body_truncated:
            reply = make_reply(400, False, "Body is not valid UTF-8", delivery)
            delivery.status, delivery.response_status, delivery.response_body = (
                DeliveryStatus.INVALID, reply.status, reply.body,
            )
            delivery.save(update_fields=["status", "response_status", "response_body"])
            return reply
        result = dispatch(delivery, fresh=created)
        if result.kind == ACCEPTED:
            record_delivery(config.slug, DeliveryStatus.RECEIVED, pairs=result.pairs_total)
            from .tasks import enqueue_delivery  # pylint: disable=import-outside-toplevel

            transaction.on_commit(lambda: enqueue_delivery(delivery.pk))
        return reply_for(result)

    @staticmethod
    def _read_body(django_request, max_bytes):
        """
        Read at most ``max_bytes + 1`` bytes of the body (one more than allowed
        tells an oversized body apart). A chunked body has no Content-Length, and
        Django would then read nothing: read it from the server's stream instead.
        """
        meta = django_request.META
        if not meta.get("CONTENT_LENGTH") and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            stream = meta.get("wsgi.input")
            return stream.read(max_bytes + 1) if stream is not None else b""
        return django_request.read(max_bytes + 1)

    @staticmethod
    def _rejected_key(config, remote_addr):
        """The refusals budget's cache key: per source and client address."""
        return f"rejected:{config.slug}:{remote_addr}"

    @staticmethod
    def _too_many_refused(wait):
        """The 429 of a client over its refusals budget; not recorded, so a flood cannot fill the database."""
        throttled = make_reply(429, False, "Too many refused requests; retry later")
        throttled.headers["Retry-After"] = str(wait)
        return throttled

    def _reject(self, config, body, remote_addr, claimed_id, reason, reply):
        """Record and answer a refused request, unless its sender is over the refusals budget."""
        wait = check_throttle(self._rejected_key(config, remote_addr), get_setting("LMS_BRIDGE_REJECTED_THROTTLE_RATE"))
        if wait:
            return self._too_many_refused(wait)
        delivery = record_rejected(config.slug, body, remote_addr, claimed_id, reason, reply)
        log.info("lms_bridge rejected delivery %s from source %s: %s", delivery.uuid, config.slug, reason)
        return reply
