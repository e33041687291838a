"""
Plain HMAC-SHA256 of the raw body, in a configurable header.

This covers the many senders that sign this way: GitHub
(``X-Hub-Signature-256: sha256=<hex>``), Shopify (``X-Shopify-Hmac-Sha256:
<base64>``), WooCommerce (``X-WC-Webhook-Signature: <base64>``) and others.
Nothing time-bound is signed, so this scheme has no replay window: prefer
Standard Webhooks where the sender can do it.

Options:
    HEADER (str): the signature header (default ``X-Signature-SHA256``).
    ENCODING (str): ``hex`` (default) or ``base64``.
    PREFIX (str): text before the digest, such as ``sha256=`` (default none).
    ID_HEADER (str): a header carrying the sender's delivery id, used as the
        idempotency key (for example ``X-GitHub-Delivery``); optional.
"""
import base64
import binascii
import hmac
import re

from .base import SignatureError, SignatureScheme, Verification

ENCODINGS = ("hex", "base64")
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9-]{1,128}")
EVENT_ID_RE = re.compile(r"[A-Za-z0-9_:\-]{1,255}")
HEX_DIGEST_RE = re.compile(r"[0-9a-fA-F]{64}")


class HmacSha256Scheme(SignatureScheme):
    """HMAC-SHA256 of the raw body; header, encoding and prefix are options."""

    name = "hmac-sha256"
    replay_protected = False

    @classmethod
    def check_options(cls, options):
        problems = []
        for key in ("HEADER", "ID_HEADER"):
            if key in options and not (isinstance(options[key], str) and HEADER_NAME_RE.fullmatch(options[key])):
                problems.append(f"OPTIONS['{key}'] must be an HTTP header name")
        if options.get("ENCODING", "hex") not in ENCODINGS:
            problems.append(f"OPTIONS['ENCODING'] must be one of {', '.join(ENCODINGS)}")
        if not isinstance(options.get("PREFIX", ""), str) or not options.get("PREFIX", "").isascii():
            problems.append("OPTIONS['PREFIX'] must be an ASCII string")
        return problems

    @property
    def header_name(self):
        return self.options.get("HEADER", "X-Signature-SHA256")

    @property
    def encoding(self):
        return self.options.get("ENCODING", "hex")

    @property
    def prefix(self):
        return self.options.get("PREFIX", "")

    def verify(self, body, headers, now):
        headers = self.lower_headers(headers)
        value = self.header(headers, self.header_name)
        if not value.startswith(self.prefix):
            raise SignatureError("signature prefix missing")
        encoded = value[len(self.prefix):]
        digest = self._decode(encoded)
        index = self.first_matching_key(bytes(body), [digest])
        if index is None:
            raise SignatureError("no signature matches")
        event_id = None
        if self.options.get("ID_HEADER"):
            candidate = headers.get(self.options["ID_HEADER"].lower())
            if isinstance(candidate, str) and EVENT_ID_RE.fullmatch(candidate.strip()):
                event_id = candidate.strip()
        return Verification(event_id=event_id, timestamp=None, secret_index=index)

    def _decode(self, encoded):
        """Decode the digest in the configured encoding, refusing anything else."""
        if self.encoding == "hex":
            if not HEX_DIGEST_RE.fullmatch(encoded):
                raise SignatureError("signature is not a 64-digit hex digest")
            return bytes.fromhex(encoded)
        try:
            digest = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("signature is not base64") from None
        if len(digest) != 32:
            raise SignatureError("signature has the wrong length")
        return digest

    def sign(self, body, event_id=None, timestamp=None, secret_index=0):
        digest = hmac.new(self.key_for_signing(secret_index), bytes(body), "sha256").digest()
        encoded = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode("ascii")
        headers = {self.header_name: self.prefix + encoded}
        if event_id and self.options.get("ID_HEADER"):
            headers[self.options["ID_HEADER"]] = event_id
        return headers
