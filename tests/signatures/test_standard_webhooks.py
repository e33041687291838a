"""Tests of the Standard Webhooks scheme."""
import base64
import hashlib
import hmac

import pytest

from lms_bridge.signatures import SignatureError, verify_signature
from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme

from .contract import BODY, NOW, SignatureSchemeContract

OFFICIAL_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OFFICIAL_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
OFFICIAL_TIMESTAMP = 1614265330
OFFICIAL_BODY = b'{"test": 2432232314}'
OFFICIAL_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-key-of-twenty-four-plus").decode()


def standard_headers(body, secret, timestamp=NOW, event_id="msg_1"):
    """Sign as the Standard Webhooks specification says, without lms_bridge's code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


class TestStandardWebhooksContract(SignatureSchemeContract):
    """The shared contract, for Standard Webhooks."""

    scheme_class = StandardWebhooksScheme
    secret = OFFICIAL_SECRET
    other_secret = OTHER_SECRET
    signature_header = "webhook-signature"

    def sender_headers(self, body, secret, timestamp=NOW, event_id="msg_1"):
        return standard_headers(body, secret, timestamp, event_id)


class TestStandardWebhooks:
    """Scheme-specific behaviour."""

    def scheme(self, tolerance=300):
        return StandardWebhooksScheme([OFFICIAL_SECRET], tolerance=tolerance)

    def test_official_vector(self):
        """Expected behavior: the specification's test vector verifies, and sign() reproduces it."""
        headers = {
            "webhook-id": OFFICIAL_ID,
            "webhook-timestamp": str(OFFICIAL_TIMESTAMP),
            "webhook-signature": OFFICIAL_SIGNATURE,
        }
        result = verify_signature(self.scheme(), OFFICIAL_BODY, headers, OFFICIAL_TIMESTAMP)
        assert (result.event_id, result.timestamp) == (OFFICIAL_ID, OFFICIAL_TIMESTAMP)
        signed = self.scheme().sign(OFFICIAL_BODY, event_id=OFFICIAL_ID, timestamp=OFFICIAL_TIMESTAMP)
        assert signed["webhook-signature"] == OFFICIAL_SIGNATURE

    def test_several_signatures_one_valid(self):
        """Expected behavior: a space-separated list verifies when any v1 entry matches; others are ignored."""
        headers = standard_headers(BODY, OFFICIAL_SECRET)
        wrong = standard_headers(BODY, OTHER_SECRET)["webhook-signature"]
        headers["webhook-signature"] = f"v1a,abcd {wrong} garbage {headers['webhook-signature']}"
        assert verify_signature(self.scheme(), BODY, headers, NOW).event_id == "msg_1"

    @pytest.mark.parametrize("timestamp", ["1.7e9", "+1700000000", "-1700000000", "1700000000.0", "0x6553f100", ""])
    def test_malformed_timestamps(self, timestamp):
        """Expected behavior: only plain decimal seconds are a timestamp."""
        headers = standard_headers(BODY, OFFICIAL_SECRET)
        headers["webhook-timestamp"] = timestamp
        with pytest.raises(SignatureError):
            verify_signature(self.scheme(), BODY, headers, NOW)

    @pytest.mark.parametrize("event_id", ["msg.1", "a b", "x" * 256, "ünï"])
    def test_malformed_ids(self, event_id):
        """Expected behavior: ids with dots, spaces, non-ASCII or over 255 characters are refused."""
        headers = standard_headers(BODY, OFFICIAL_SECRET, event_id="msg_1")
        headers["webhook-id"] = event_id
        with pytest.raises(SignatureError):
            verify_signature(self.scheme(), BODY, headers, NOW)

    def test_signature_covers_the_id(self):
        """Expected behavior: changing the id invalidates the signature (the id is signed)."""
        headers = standard_headers(BODY, OFFICIAL_SECRET, event_id="msg_1")
        headers["webhook-id"] = "msg_2"
        with pytest.raises(SignatureError):
            verify_signature(self.scheme(), BODY, headers, NOW)

    def test_tolerance_is_configurable(self):
        """Expected behavior: TOLERANCE_SECONDS bounds the accepted clock difference."""
        headers = standard_headers(BODY, OFFICIAL_SECRET, timestamp=NOW - 20)
        verify_signature(self.scheme(tolerance=30), BODY, headers, NOW)
        with pytest.raises(SignatureError):
            verify_signature(self.scheme(tolerance=10), BODY, headers, NOW)

    @pytest.mark.parametrize("secret,problem", [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with 'whsec_'"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes"),
    ])
    def test_secret_format(self, secret, problem):
        """Expected behavior: secrets must be whsec_ base64 keys of 24-64 bytes; others are unusable."""
        problems = StandardWebhooksScheme.check_configuration([secret], 300, {})
        assert any(problem in text for text in problems)
        assert not StandardWebhooksScheme([secret]).is_open

    def test_generated_secret_is_usable(self):
        """Expected behavior: generate_secret() returns a secret the scheme accepts."""
        secret = StandardWebhooksScheme.generate_secret()
        assert StandardWebhooksScheme.check_configuration([secret], 300, {}) == []
