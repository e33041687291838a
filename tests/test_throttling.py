"""Tests of per-source rate limits (429 with Retry-After)."""
import pytest
from django.test import Client, override_settings

from lms_bridge.checks import check_sizes, check_sources
from lms_bridge.models import WebhookDelivery
from lms_bridge.throttling import parse_rate

from .conftest import DEMO_COURSE
from .signing import TEST_SECRET, post_webhook

pytestmark = pytest.mark.django_db

PAYLOAD = {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}


def test_source_rate_limit(client, courses, ada):
    """Expected behavior: past THROTTLE_RATE a verified delivery gets 429 with Retry-After, recorded as throttled."""
    statuses = [post_webhook(client, PAYLOAD, source="limited").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    throttled = post_webhook(client, PAYLOAD, source="limited")
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["success"] is False
    assert WebhookDelivery.objects.filter(source="limited", signature_detail="throttled").count() == 1
    assert post_webhook(client, PAYLOAD, source="shop").status_code == 200


@override_settings(LMS_BRIDGE_REJECTED_THROTTLE_RATE="2/min")
def test_forged_requests_are_limited_without_touching_the_real_sender(client, courses, ada):
    """
    Expected behavior: past the refusals budget, forged requests get 429 and
    are not recorded; the real sender (another address) passes. The budget is
    per client address: the forger's requests do not count against the sender.
    """
    forged = [post_webhook(client, PAYLOAD, headers={}).status_code for _ in range(4)]
    assert forged == [401, 401, 429, 429]
    assert WebhookDelivery.objects.filter(signature_valid=False).count() == 2
    sender = Client(enforce_csrf_checks=True, REMOTE_ADDR="192.0.2.10")
    assert post_webhook(sender, PAYLOAD).status_code == 200


@override_settings(LMS_BRIDGE_REJECTED_THROTTLE_RATE=None)
def test_refusals_budget_can_be_disabled(client, courses):
    """Expected behavior: None means no limit."""
    assert {post_webhook(client, PAYLOAD, headers={}).status_code for _ in range(5)} == {401}


@pytest.mark.parametrize("rate,expected", [("120/min", (120, 60)), ("5/s", (5, 1)), ("1/day", (1, 86400)),
                                           (None, None)])
def test_parse_rate(rate, expected):
    """Expected behavior: the DRF-style rate texts."""
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["fast", "0/min", "10/week", 10, "-1/s"])
def test_bad_rates_are_system_check_errors(rate):
    """Expected behavior: an unusable rate is lms_bridge.E015."""
    with override_settings(LMS_BRIDGE_SOURCES={"s": {"SECRETS": [TEST_SECRET], "THROTTLE_RATE": rate}},
                           LMS_BRIDGE_REJECTED_THROTTLE_RATE=rate):
        assert [m.id for m in check_sources()] == ["lms_bridge.E015"]
        assert [m.id for m in check_sizes()] == ["lms_bridge.E015"]
