"""
Signing helpers shared by the tests: test secrets and a signed POST.

The helpers sign with the schemes' own ``sign``; the signature contract suite
also checks each scheme against independently computed signatures, so a bug
shared by ``sign`` and ``verify`` cannot hide.
"""
import base64
import json

from lms_bridge.signatures.hmac_sha256 import HmacSha256Scheme
from lms_bridge.signatures.lernito import LernitoScheme
from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme

TEST_SECRET = "whsec_" + base64.b64encode(b"lms-bridge-test-secret-32-bytes!").decode()
TEST_SECRET_OLD = "whsec_" + base64.b64encode(b"an-older-secret-still-accepted").decode()
TEST_LEGACY_SECRET = "legacy-secret-0123456789"
GITHUB_SECRET = "github-secret-0123456789"

WEBHOOK_URL = "/api/lms-bridge/v1/webhooks/{source}/"


def body_bytes(payload):
    """Bytes for a payload given as a dict, a str or bytes."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload).encode("utf-8")


def sign_for(source, body, event_id=None, timestamp=None, secret=None):
    """The headers the test source ``source`` expects for ``body``."""
    if source in ("shop", "limited", "scoped", "forced", "cohorts", "cohorts-async", "shop-async"):
        return StandardWebhooksScheme([secret or TEST_SECRET]).sign(body, event_id=event_id, timestamp=timestamp)
    if source == "github":
        scheme = HmacSha256Scheme(
            [secret or GITHUB_SECRET],
            options={"HEADER": "X-Hub-Signature-256", "PREFIX": "sha256=", "ID_HEADER": "X-GitHub-Delivery"},
        )
        return scheme.sign(body, event_id=event_id)
    if source == "legacy":
        return LernitoScheme([secret or TEST_LEGACY_SECRET]).sign(body)
    raise ValueError(f"no signer for test source {source!r}")


def post_webhook(client, payload, source="shop", headers=None, content_type="application/json", **sign_options):
    """
    POST ``payload`` to the webhook of ``source``, signed unless ``headers`` is given.

    Returns:
        The test client's response.
    """
    body = body_bytes(payload)
    if headers is None:
        headers = sign_for(source, body, **sign_options)
    return client.post(WEBHOOK_URL.format(source=source), data=body, content_type=content_type, headers=headers)
