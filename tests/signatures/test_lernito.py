"""Tests of the lernito-openedx compatibility scheme."""
import hashlib
import hmac
import json

import pytest

from lms_bridge.signatures import SignatureError, verify_signature
from lms_bridge.signatures.lernito import LernitoScheme

from .contract import NOW, SignatureSchemeContract

SECRET = "your_webhook_secret_0123"


def lernito_signature(data, secret, **dumps_options):
    """What the lernito-openedx README's sender script computes."""
    data_string = json.dumps(data, sort_keys=True, **dumps_options)
    return hmac.new(secret.encode("utf-8"), data_string.encode("utf-8"), hashlib.sha256).hexdigest()


class TestLernitoContract(SignatureSchemeContract):
    """The shared contract, for lernito-style senders."""

    scheme_class = LernitoScheme
    secret = SECRET
    other_secret = "another-secret-9876543210"
    signature_header = "X-Lernito-Signature"

    def sender_headers(self, body, secret, timestamp=NOW, event_id="msg_1"):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        return {"X-Lernito-Signature": lernito_signature(data, secret)}


class TestLernito:
    """Scheme-specific behaviour."""

    data = {"email": "ünïcode@example.com", "name": "Zoë", "courseIds": ["course-v1:edX+DemoX+Demo_Course"]}

    @pytest.mark.parametrize("dumps_options", [
        {},
        {"separators": (",", ":")},
        {"ensure_ascii": False},
        {"separators": (",", ":"), "ensure_ascii": False},
    ])
    def test_sender_serializations(self, dumps_options):
        """Expected behavior: default and compact separators, escaped or not, all verify."""
        body = json.dumps(self.data, indent=2).encode()  # what is sent need not be what was signed
        headers = {"X-Lernito-Signature": lernito_signature(self.data, SECRET, **dumps_options)}
        assert verify_signature(LernitoScheme([SECRET]), body, headers, NOW).event_id is None

    def test_raw_body_signature(self):
        """Expected behavior: a sender that signs the raw body also verifies."""
        body = b'{"email":"a@example.com","courseIds":[]}'
        headers = {"X-Lernito-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
        verify_signature(LernitoScheme([SECRET]), body, headers, NOW)

    def test_hostile_json_is_not_verifiable(self):
        """Expected behavior: a body the strict reader refuses (duplicate keys) cannot verify."""
        body = b'{"email": "a@example.com", "email": "b@example.com"}'
        headers = {"X-Lernito-Signature": lernito_signature({"email": "b@example.com"}, SECRET)}
        with pytest.raises(SignatureError):
            verify_signature(LernitoScheme([SECRET]), body, headers, NOW)

    def test_not_replay_protected(self):
        """Expected behavior: the scheme declares itself weaker (no replay window)."""
        assert LernitoScheme.replay_protected is False
