"""
Source options at run time: a misconfigured source is closed (503), never a
500 or a silently weaker source; refusals are cheap.
"""
import hashlib
import hmac
import json
import time

import pytest
from django.test import override_settings

from lms_bridge.models import WebhookDelivery
from lms_bridge.signatures.hmac_sha256 import HmacSha256Scheme
from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme

from .conftest import DEMO_COURSE
from .signing import TEST_SECRET, WEBHOOK_URL, body_bytes

pytestmark = pytest.mark.django_db

PAYLOAD = {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}
VERIFY_CALLS = []


class CountingScheme(HmacSha256Scheme):
    """The hmac-sha256 scheme, counting how often a delivery is verified (a scheme is a dotted path)."""

    def verify(self, body, headers, now):
        VERIFY_CALLS.append(len(body))
        return super().verify(body, headers, now)


def post(client, source, body, headers):
    return client.post(WEBHOOK_URL.format(source=source), data=body, content_type="application/json",
                       headers=headers)


def standard_headers(body, timestamp=None):
    return StandardWebhooksScheme([TEST_SECRET]).sign(body, timestamp=timestamp)


@pytest.mark.parametrize("options", [
    {"THROTTLE_RATE": "lots"},
    {"TOLERANCE_SECONDS": "300"},
    {"TOLERANCE_SECONDS": 10**30},
    {"COURSES": "(["},
    {"ACTIONS": "everything"},
    {"FORCE_ENROLLMENT": "yes"},
    {"MAX_BODY_BYTES": -1},
    {"SECRET": "typo"},
])
def test_a_misconfigured_source_is_closed(client, courses, ada, options):
    """
    Expected behavior: a correctly signed delivery to a source with a bad
    option gets the closed-source 503 (JSON, Retry-After), is recorded as
    rejected with the reason, and enrolls nobody; never a 500 or a 401.
    """
    body = body_bytes(PAYLOAD)
    with override_settings(LMS_BRIDGE_SOURCES={"shop": {"SECRETS": [TEST_SECRET], **options}}):
        response = post(client, "shop", body, standard_headers(body))
    assert response.status_code == 503, response.content
    assert response.json()["message"] == "This webhook source is not configured"
    assert response.headers["Retry-After"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "rejected" and delivery.signature_detail.startswith("source closed: ")


def test_a_one_character_plain_secret_closes_the_source(client, courses, ada):
    """Expected behavior: a lernito source whose only secret is 1 character accepts nothing, even correctly signed."""
    data = dict(PAYLOAD)
    signature = hmac.new(b"s", json.dumps(data, sort_keys=True).encode(), hashlib.sha256).hexdigest()
    with override_settings(LMS_BRIDGE_SOURCES={"legacy": {"SCHEME": "lernito", "SECRETS": ["s"]}}):
        response = post(client, "legacy", body_bytes(data), {"X-Lernito-Signature": signature})
    assert response.status_code == 503
    assert "at least 16 bytes" in WebhookDelivery.objects.get().signature_detail


def test_tolerance_is_honoured_up_to_an_hour(client, courses, ada):
    """Expected behavior: TOLERANCE_SECONDS=3600 accepts a delivery signed 50 minutes ago; 300 refuses it."""
    body = body_bytes(PAYLOAD)
    old = int(time.time()) - 3000
    with override_settings(LMS_BRIDGE_SOURCES={"shop": {"SECRETS": [TEST_SECRET], "TOLERANCE_SECONDS": 3600}}):
        assert post(client, "shop", body, standard_headers(body, timestamp=old)).status_code == 200
    with override_settings(LMS_BRIDGE_SOURCES={"shop": {"SECRETS": [TEST_SECRET], "TOLERANCE_SECONDS": 300}}):
        assert post(client, "shop", body, standard_headers(body, timestamp=old)).status_code == 401


@override_settings(
    LMS_BRIDGE_SOURCES={"counted": {"SCHEME": "tests.test_source_options.CountingScheme", "SECRETS": ["k" * 32]}},
    LMS_BRIDGE_REJECTED_THROTTLE_RATE="3/min",
)
def test_the_refusals_budget_is_consulted_before_verifying(client, courses):
    """
    Expected behavior: once a client is over its refusals budget, its next
    forged requests are answered 429 without being verified or recorded, so
    what a flood costs in verification is bounded per client.
    """
    VERIFY_CALLS.clear()
    body = body_bytes(PAYLOAD)
    statuses = [post(client, "counted", body, {"X-Signature-SHA256": "0" * 64}).status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 429, 429, 429]
    assert len(VERIFY_CALLS) == 3
    assert WebhookDelivery.objects.count() == 3


def test_lernito_bodies_have_a_small_cap(client, courses):
    """Expected behavior: a lernito source refuses a 70 KiB body with 413 before verifying it (64 KiB by default)."""
    body = body_bytes({**PAYLOAD, "pad": "x" * 70_000})
    response = post(client, "legacy", body, {"X-Lernito-Signature": "0" * 64})
    assert response.status_code == 413
    assert response.json()["message"] == "Body larger than 65536 bytes"


def test_a_source_may_set_its_own_cap(client, courses, ada):
    """Expected behavior: MAX_BODY_BYTES on the source replaces the scheme's default and the global cap."""
    from lms_bridge.signatures.lernito import LernitoScheme  # pylint: disable=import-outside-toplevel

    body = body_bytes({**PAYLOAD, "pad": "x" * 70_000})
    secret = "legacy-secret-0123456789-abcdefgh"
    with override_settings(LMS_BRIDGE_SOURCES={"legacy": {"SCHEME": "lernito", "SECRETS": [secret],
                                                          "MAX_BODY_BYTES": 100_000}}):
        response = post(client, "legacy", body, LernitoScheme([secret]).sign(body))
    assert response.status_code == 200, response.content
    with override_settings(LMS_BRIDGE_SOURCES={"shop": {"SECRETS": [TEST_SECRET], "MAX_BODY_BYTES": 50}}):
        assert post(client, "shop", body_bytes(PAYLOAD), standard_headers(body_bytes(PAYLOAD))).status_code == 413
