"""
Property-based tests (hypothesis): whatever bytes and headers arrive, the
verifiers, the strict JSON reader and the payload validation give a verdict
and never raise anything else.
"""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lms_bridge import strict_json
from lms_bridge.serializers import WebhookPayloadSerializer
from lms_bridge.signatures import SignatureError, verify_signature
from lms_bridge.signatures.hmac_sha256 import HmacSha256Scheme
from lms_bridge.signatures.lernito import LernitoScheme
from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme

from .signing import TEST_SECRET

SCHEMES = [
    StandardWebhooksScheme([TEST_SECRET]),
    HmacSha256Scheme(["hmac-secret-0123456789"], options={"PREFIX": "sha256=", "ID_HEADER": "X-Id"}),
    HmacSha256Scheme(["hmac-secret-0123456789"], options={"ENCODING": "base64"}),
    LernitoScheme(["lernito-secret-0123456789"]),
]
HEADER_NAMES = st.sampled_from([
    "webhook-id", "webhook-timestamp", "webhook-signature", "X-Signature-SHA256", "X-Lernito-Signature", "X-Id",
    "WEBHOOK-SIGNATURE", "Content-Type",
])
# Header values as a WSGI server hands them over: latin-1 decoded text.
HEADER_VALUES = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=200),
    st.sampled_from(["v1,", "v1,AAAA", "sha256=", "1614265330", "msg_1", "v1," + "A" * 43 + "="]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**18), 10**18) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=st.sampled_from(SCHEMES), body=st.binary(max_size=2000),
       headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=6), now=st.floats(0, 2e10))
def test_verifiers_always_give_a_verdict(scheme, body, headers, now):
    """Expected behavior: any body and headers -> a Verification or a SignatureError, nothing else."""
    try:
        verify_signature(scheme, body, headers, now)
    except SignatureError:
        pass


@settings(max_examples=100)
@given(scheme=st.sampled_from(SCHEMES), payload=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5),
       event_id=st.from_regex(r"[A-Za-z0-9_:\-]{1,40}", fullmatch=True))
def test_what_a_scheme_signs_it_verifies(scheme, payload, event_id):
    """Expected behavior: sign() then verify() round-trips for any JSON object body."""
    body = json.dumps(payload).encode()
    headers = scheme.sign(body, event_id=event_id, timestamp=1_700_000_000)
    assert verify_signature(scheme, body, headers, 1_700_000_000).secret_index == 0


@settings(max_examples=300)
@given(data=st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=1000).map(lambda text: text.encode("utf-8", "surrogatepass")),
))
def test_strict_json_gives_a_value_or_its_own_error(data):
    """Expected behavior: any bytes -> a parsed value or StrictJSONError."""
    try:
        strict_json.loads(data)
    except strict_json.StrictJSONError:
        pass


@settings(max_examples=200)
@given(value=JSON_VALUES)
def test_strict_json_reads_what_json_writes(value):
    """Expected behavior: ordinary JSON (finite numbers, no duplicates, shallow) is read back unchanged."""
    text = json.dumps(value)
    assert strict_json.loads(text.encode()) == json.loads(text)


# JSON values whose strings may hold surrogates (alone or paired) and that may nest deep.
SURROGATE_TEXT = st.text(st.characters(codec=None, categories=["Cs", "Ll", "Nd"]), max_size=6)
AWKWARD_JSON = st.recursive(
    st.none() | st.integers(0, 9) | SURROGATE_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(SURROGATE_TEXT, children, max_size=3),
    max_leaves=60,
)


def _walked_verdict(text):
    """What a full walk over every parsed value says: the reference the fast path must agree with."""
    try:
        value = json.loads(text)
    except (RecursionError, ValueError):
        return "error"
    try:
        strict_json._check_tree(value, strict_json.MAX_DEPTH)  # pylint: disable=protected-access
    except strict_json.StrictJSONError:
        return "error"
    return "ok"


@settings(max_examples=400)
@given(value=AWKWARD_JSON, ascii_only=st.booleans(), as_bytes=st.booleans())
def test_strict_json_refuses_exactly_what_a_walk_over_every_value_refuses(value, ascii_only, as_bytes):
    """
    Expected behavior: the reader skips its walk over the values only when the text
    shows it needs none; whether it escapes surrogates or not, given as text or as
    bytes, its verdict is the full walk's.
    """
    text = json.dumps(value, ensure_ascii=ascii_only)
    if as_bytes:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return  # a raw surrogate cannot arrive as UTF-8 bytes
    else:
        data = text
    try:
        strict_json.loads(data)
        verdict = "ok"
    except strict_json.StrictJSONError:
        verdict = "error"
    assert verdict == _walked_verdict(text)


@pytest.mark.django_db
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(
    st.dictionaries(st.sampled_from(["email", "courseIds", "action", "mode", "name", "family", "username", "x"]),
                    JSON_VALUES, max_size=8),
    st.fixed_dictionaries({"email": st.emails(), "courseIds": st.lists(st.text(max_size=60), max_size=5)}),
))
def test_serializer_always_gives_a_verdict(payload):
    """Expected behavior: any JSON object -> valid or errors, never an exception."""
    serializer = WebhookPayloadSerializer(data=payload)
    if serializer.is_valid():
        assert serializer.validated_data["courseIds"]
    else:
        assert serializer.errors
