"""
Drop-in compatibility with senders built for the lernito-openedx plugin.

Such a sender signs not the body it sends but its payload re-serialized with
sorted keys (``json.dumps(data, sort_keys=True)``), as hex HMAC-SHA256 in
``X-Lernito-Signature``. To verify, the body has to be parsed first, so this
scheme uses the same strict JSON reader as the view. The serializations tried
are Python's default separators and the compact ones, each with and without
ASCII escaping (senders in other languages tend to send compact, unescaped
JSON), plus the raw body itself.

It is weaker than Standard Webhooks: nothing time-bound is signed, so a
captured delivery can be replayed at any time, and there is no delivery id.
Use it only for senders that cannot be changed.
"""
import hmac
import json
import re

from .. import strict_json
from .base import SignatureError, SignatureScheme, Verification

HEADER = "X-Lernito-Signature"
HEX_DIGEST_RE = re.compile(r"[0-9a-fA-F]{64}")
SEPARATORS = ((", ", ": "), (",", ":"))


class LernitoScheme(SignatureScheme):
    """Hex HMAC-SHA256 over the sorted-keys JSON re-serialization of the payload."""

    name = "lernito"
    replay_protected = False
    # Verifying means parsing and re-serializing the body several times before
    # the sender is known: a small cap bounds what a forged request costs.
    DEFAULT_MAX_BODY_BYTES = 64 * 1024

    def verify(self, body, headers, now):
        headers = self.lower_headers(headers)
        value = self.header(headers, HEADER)
        if not HEX_DIGEST_RE.fullmatch(value):
            raise SignatureError("signature is not a 64-digit hex digest")
        try:
            data = strict_json.loads(body)
        except strict_json.StrictJSONError:
            raise SignatureError("body is not JSON, so it cannot be verified") from None
        index = None
        for message in self.signed_forms(data, body):
            index = self.first_matching_key(message, [bytes.fromhex(value)])
            if index is not None:
                break
        if index is None:
            raise SignatureError("no signature matches")
        return Verification(event_id=None, timestamp=None, secret_index=index)

    @staticmethod
    def signed_forms(data, body):
        """Yield every byte string a lernito-style sender may have signed."""
        for separators in SEPARATORS:
            for ensure_ascii in (True, False):
                yield json.dumps(data, sort_keys=True, separators=separators, ensure_ascii=ensure_ascii).encode("utf-8")
        yield bytes(body)

    def sign(self, body, event_id=None, timestamp=None, secret_index=0):
        # Exactly what the lernito-openedx README's sender script does.
        message = json.dumps(json.loads(body), sort_keys=True).encode("utf-8")
        digest = hmac.new(self.key_for_signing(secret_index), message, "sha256").hexdigest()
        return {HEADER: digest}
