"""Tests of the plain HMAC-SHA256 scheme (GitHub, Shopify, WooCommerce styles)."""
import base64
import hashlib
import hmac

import pytest

from lms_bridge.signatures import SignatureError, verify_signature
from lms_bridge.signatures.hmac_sha256 import HmacSha256Scheme

from .contract import BODY, NOW, SignatureSchemeContract


class TestGithubStyleContract(SignatureSchemeContract):
    """The contract with GitHub's header, prefix and hex digest."""

    scheme_class = HmacSha256Scheme
    options = {"HEADER": "X-Hub-Signature-256", "PREFIX": "sha256=", "ID_HEADER": "X-GitHub-Delivery"}
    secret = "github-secret-0123456789"
    other_secret = "another-secret-9876543210"
    signature_header = "X-Hub-Signature-256"

    def sender_headers(self, body, secret, timestamp=NOW, event_id="msg_1"):
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": "sha256=" + digest, "X-GitHub-Delivery": event_id}

    def test_delivery_id_header_is_the_event_id(self):
        """Expected behavior: ID_HEADER's value becomes the idempotency key."""
        assert self.verify(BODY, self.sender_headers(BODY, self.secret, event_id="abc-123")).event_id == "abc-123"


class TestShopifyStyleContract(SignatureSchemeContract):
    """The contract with Shopify's header and base64 digest, no prefix."""

    scheme_class = HmacSha256Scheme
    options = {"HEADER": "X-Shopify-Hmac-Sha256", "ENCODING": "base64"}
    secret = "shopify-secret-0123456789"
    other_secret = "another-secret-9876543210"
    signature_header = "X-Shopify-Hmac-Sha256"

    def sender_headers(self, body, secret, timestamp=NOW, event_id="msg_1"):
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        return {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}

    def test_no_id_header_means_no_event_id(self):
        """Expected behavior: without ID_HEADER there is no idempotency key."""
        assert self.verify(BODY, self.sender_headers(BODY, self.secret)).event_id is None


class TestHmacOptions:
    """Option validation."""

    @pytest.mark.parametrize("options,problem", [
        ({"ENCODING": "base32"}, "ENCODING"),
        ({"HEADER": "Bad Header"}, "HEADER"),
        ({"PREFIX": 5}, "PREFIX"),
    ])
    def test_bad_options_are_reported(self, options, problem):
        """Expected behavior: invalid options are configuration problems (system check errors)."""
        assert any(problem in text for text in HmacSha256Scheme.check_configuration(["s" * 20], 300, options))

    def test_uppercase_hex_is_accepted(self):
        """Expected behavior: hex digests compare regardless of case."""
        scheme = HmacSha256Scheme(["secret-0123456789"])
        digest = hmac.new(b"secret-0123456789", BODY, hashlib.sha256).hexdigest().upper()
        assert verify_signature(scheme, BODY, {"X-Signature-SHA256": digest}, NOW).secret_index == 0

    def test_missing_prefix_is_rejected(self):
        """Expected behavior: a configured prefix is required."""
        scheme = HmacSha256Scheme(["secret-0123456789"], options={"PREFIX": "sha256="})
        digest = hmac.new(b"secret-0123456789", BODY, hashlib.sha256).hexdigest()
        with pytest.raises(SignatureError):
            verify_signature(scheme, BODY, {"X-Signature-SHA256": digest}, NOW)
