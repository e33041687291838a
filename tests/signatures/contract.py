"""
The contract every signature scheme must pass.

A scheme's test class inherits ``SignatureSchemeContract`` and says how a
*sender* signs (independently of the scheme's own ``sign``), which header
carries the signature, and how to build the scheme. The contract then checks
valid, tampered, wrong-secret, rotated-secret, missing, malformed, non-ASCII
and garbage deliveries, and, for replay-protected schemes, stale and future
timestamps.
"""
import json
import time

import pytest

from lms_bridge.signatures import SignatureError, verify_signature

NOW = 1_700_000_000
BODY = json.dumps({"email": "ada@example.com", "courseIds": ["course-v1:edX+DemoX+Demo_Course"]}).encode()


class SignatureSchemeContract:
    """Inherit, and define the four members below."""

    scheme_class = None
    secret = None
    other_secret = None
    signature_header = None

    def sender_headers(self, body, secret, timestamp=NOW, event_id="msg_1"):
        """What a real sender sends, computed without the scheme's code."""
        raise NotImplementedError

    def make_scheme(self, secrets, tolerance=300):
        return self.scheme_class(secrets, tolerance=tolerance, options=getattr(self, "options", {}))

    def verify(self, body, headers, secrets=None, now=NOW):
        return verify_signature(self.make_scheme(secrets or [self.secret]), body, headers, now)

    def test_valid_signature_verifies(self):
        """Expected behavior: a correctly signed body verifies with the first secret."""
        result = self.verify(BODY, self.sender_headers(BODY, self.secret))
        assert result.secret_index == 0

    def test_own_sign_matches_sender(self):
        """Expected behavior: the scheme's sign() produces headers its verify() accepts."""
        headers = self.make_scheme([self.secret]).sign(BODY, event_id="msg_2", timestamp=NOW)
        assert self.verify(BODY, headers).secret_index == 0

    def test_tampered_body_is_rejected(self):
        """Expected behavior: changing one byte of the body fails verification."""
        headers = self.sender_headers(BODY, self.secret)
        tampered = BODY.replace(b"ada@", b"eve@")
        with pytest.raises(SignatureError):
            self.verify(tampered, headers)

    def test_wrong_secret_is_rejected(self):
        """Expected behavior: a body signed with another secret fails."""
        with pytest.raises(SignatureError):
            self.verify(BODY, self.sender_headers(BODY, self.other_secret))

    def test_rotated_secret_is_accepted(self):
        """Expected behavior: during a rotation both secrets verify, and the index says which matched."""
        secrets = [self.secret, self.other_secret]
        assert self.verify(BODY, self.sender_headers(BODY, self.other_secret), secrets=secrets).secret_index == 1
        assert self.verify(BODY, self.sender_headers(BODY, self.secret), secrets=secrets).secret_index == 0

    def test_unusable_secrets_close_the_scheme(self):
        """Expected behavior: with no usable secret nothing verifies, not even an unsigned body."""
        scheme = self.make_scheme(["", None])
        assert not scheme.is_open
        with pytest.raises(SignatureError):
            verify_signature(scheme, BODY, self.sender_headers(BODY, self.secret), NOW)

    def test_missing_signature_header_is_rejected(self):
        """Expected behavior: no signature header, no verification."""
        headers = self.sender_headers(BODY, self.secret)
        headers = {k: v for k, v in headers.items() if k.lower() != self.signature_header.lower()}
        with pytest.raises(SignatureError):
            self.verify(BODY, headers)

    @pytest.mark.parametrize("value", ["", "   ", "garbage", "v1,", "sha256=", "é" * 10, "x" * 5000, "\x00"])
    def test_malformed_signature_header_is_rejected(self, value):
        """Expected behavior: empty, garbage, non-ASCII or overlong headers are a SignatureError, not a crash."""
        headers = self.sender_headers(BODY, self.secret)
        headers[self.signature_header] = value
        with pytest.raises(SignatureError):
            self.verify(BODY, headers)

    def test_header_names_are_case_insensitive(self):
        """Expected behavior: header names match in any case, as HTTP says."""
        headers = {k.upper(): v for k, v in self.sender_headers(BODY, self.secret).items()}
        assert self.verify(BODY, headers).secret_index == 0

    @pytest.mark.parametrize("body", [b"", b"\xff\xfe", b"[]", b"null", b'{"a":1,"a":2}', b"[" * 5000])
    def test_garbage_bodies_give_a_verdict(self, body):
        """Expected behavior: any body gets a verdict (verified or SignatureError), never another exception."""
        try:
            self.verify(body, self.sender_headers(BODY, self.secret))
        except SignatureError:
            pass

    def test_stale_and_future_timestamps(self):
        """Expected behavior: replay-protected schemes refuse timestamps outside the tolerance."""
        if not self.scheme_class.replay_protected:
            pytest.skip("this scheme signs no timestamp (documented as weaker)")
        for offset in (-301, 301, -10_000_000):
            with pytest.raises(SignatureError):
                self.verify(BODY, self.sender_headers(BODY, self.secret, timestamp=NOW + offset))
        for offset in (-300, 0, 300):
            self.verify(BODY, self.sender_headers(BODY, self.secret, timestamp=NOW + offset))

    def test_real_clock(self):
        """Expected behavior: a delivery signed now verifies against the real clock."""
        now = int(time.time())
        assert self.verify(BODY, self.sender_headers(BODY, self.secret, timestamp=now), now=time.time())
