"""
The Standard Webhooks scheme (https://www.standardwebhooks.com/), the recommended one.

The sender signs ``{webhook-id}.{webhook-timestamp}.{raw body}`` with
HMAC-SHA256 and sends ``webhook-signature: v1,<base64 digest>`` (several
space-separated signatures may be sent during a key rotation). The signed
timestamp bounds replays; the id is the delivery's idempotency key.
"""
import base64
import binascii
import hmac
import re
import secrets as random_secrets
import time

from .base import SignatureError, SignatureScheme, Verification

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
# A message id is an opaque token. Dots are refused: the id is the first part
# of the dot-separated signed content, so refusing them keeps it unambiguous.
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_:\-]{1,255}")
# Plain decimal seconds only: "1.7e9", "+1700000000" or " 17" are refused.
TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")
MAX_SIGNATURES = 16


class StandardWebhooksScheme(SignatureScheme):
    """Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` headers."""

    name = "standard-webhooks"
    replay_protected = True
    # The key length rules of parse_secret apply instead of the plain-secret ones.
    RECOMMENDED_SECRET_BYTES = 0

    @classmethod
    def parse_secret(cls, secret):
        """
        Decode a ``whsec_<base64>`` secret.

        Raises:
            ValueError: no ``whsec_`` prefix, bad base64, or a key outside 24-64 bytes.
        """
        if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
            raise ValueError("a Standard Webhooks secret starts with 'whsec_'")
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the part after 'whsec_' is not valid base64") from None
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            raise ValueError(f"the key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {len(key)}")
        return key

    @staticmethod
    def generate_secret(length=32):
        """Return a new random ``whsec_`` secret (for operators and the sandbox)."""
        return SECRET_PREFIX + base64.b64encode(random_secrets.token_bytes(length)).decode("ascii")

    def verify(self, body, headers, now):
        headers = self.lower_headers(headers)
        message_id = self.header(headers, "webhook-id")
        timestamp_text = self.header(headers, "webhook-timestamp")
        signature_header = self.header(headers, "webhook-signature")
        if not MESSAGE_ID_RE.fullmatch(message_id):
            raise SignatureError("malformed webhook-id")
        if not TIMESTAMP_RE.fullmatch(timestamp_text):
            raise SignatureError("malformed webhook-timestamp")
        timestamp = int(timestamp_text)
        if timestamp < now - self.tolerance:
            raise SignatureError("webhook-timestamp too old")
        if timestamp > now + self.tolerance:
            raise SignatureError("webhook-timestamp in the future")
        candidates = self._candidates(signature_header)
        if not candidates:
            raise SignatureError("no v1 signature in webhook-signature")
        message = f"{message_id}.{timestamp_text}.".encode("ascii") + bytes(body)
        index = self.first_matching_key(message, candidates)
        if index is None:
            raise SignatureError("no signature matches")
        return Verification(event_id=message_id, timestamp=timestamp, secret_index=index)

    @staticmethod
    def _candidates(signature_header):
        """Decode the ``v1,<base64>`` entries; other versions and garbage are skipped."""
        candidates = []
        for token in signature_header.split()[:MAX_SIGNATURES]:
            version, _, encoded = token.partition(",")
            if version != "v1" or not encoded:
                continue
            try:
                digest = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(digest) == 32:
                candidates.append(digest)
        return candidates

    def sign(self, body, event_id=None, timestamp=None, secret_index=0):
        event_id = event_id or "msg_" + random_secrets.token_hex(12)
        timestamp = int(time.time()) if timestamp is None else int(timestamp)
        message = f"{event_id}.{timestamp}.".encode("ascii") + bytes(body)
        digest = hmac.new(self.key_for_signing(secret_index), message, "sha256").digest()
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
        }
