"""
Signature schemes: verify that a webhook delivery comes from a configured sender.

A source's ``SCHEME`` setting names one of ``SCHEMES`` or gives the dotted
path of a ``SignatureScheme`` subclass (a new scheme is one new module).
Everything in this package is pure Python: no Django, no database.
"""
from ..importing import import_subclass
from .base import SignatureError, SignatureScheme, Verification

SCHEMES = {
    "standard-webhooks": "lms_bridge.signatures.standard_webhooks.StandardWebhooksScheme",
    "hmac-sha256": "lms_bridge.signatures.hmac_sha256.HmacSha256Scheme",
    "lernito": "lms_bridge.signatures.lernito.LernitoScheme",
}
DEFAULT_SCHEME = "standard-webhooks"

__all__ = ["SCHEMES", "SignatureError", "SignatureScheme", "Verification", "get_scheme_class", "verify_signature"]


def get_scheme_class(name):
    """
    Return the scheme class for a ``SCHEME`` setting.

    Arguments:
        name (str): a key of ``SCHEMES`` or a dotted path to a ``SignatureScheme`` subclass.

    Raises:
        ImportError: the name is neither a known scheme nor an importable class.
    """
    path = SCHEMES.get(name, name) if isinstance(name, str) else name
    if not isinstance(path, str) or "." not in path:
        raise ImportError(f"unknown signature scheme {name!r}")
    return import_subclass(path, SignatureScheme, "signature scheme")


def verify_signature(scheme, body, headers, now):
    """
    Verify a raw delivery with a configured scheme.

    Arguments:
        scheme (SignatureScheme): the source's scheme instance.
        body (bytes): the raw body.
        headers (Mapping[str, str]): the request headers.
        now (float): the current Unix time.

    Returns:
        Verification

    Raises:
        SignatureError: not authentic, not verifiable, or the scheme has no usable secret.
    """
    if not scheme.is_open:
        raise SignatureError("the source has no usable secret")
    try:
        return scheme.verify(body, headers, now)
    except SignatureError:
        raise
    except Exception as exc:
        # A verifier must answer, never crash: anything unexpected on
        # unauthenticated input is a failed verification.
        raise SignatureError(f"verification error: {type(exc).__name__}") from exc
