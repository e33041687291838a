"""
A catalogue of bad requests, sent to the live server (gunicorn on MariaDB).

Each case says what a sender does wrong and what it must get back. Whatever
the case: never a 5xx, never a 3xx; and a request that fails verification
leaves nothing but its own rejected delivery record.
"""
import base64
import hashlib
import hmac
import json
import socket
import time

import pytest
from common.djangoapps.student.models import CourseEnrollment, CourseEnrollmentAllowed

from lms_bridge.models import EnrollmentOperation, WebhookDelivery

from .conftest import BRIDGE_COURSE, DEMO_COURSE
from .signing import GITHUB_SECRET, TEST_LEGACY_SECRET, TEST_SECRET_OLD, body_bytes, sign_for

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/lms-bridge/v1/webhooks/{}/"
GOOD = {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}
MAX = 1024 * 1024
JSON = {"Content-Type": "application/json"}


def post(server, body, headers, source="shop", path=None, method="POST"):
    """Send a request with a JSON Content-Type unless the case sets its own."""
    return server.request(method, path or URL.format(source), body=body, headers={**JSON, **headers})


def signed(server, payload=GOOD, **sign_options):
    """A correctly signed delivery of ``payload`` (dict, str or bytes)."""
    body = body_bytes(payload)
    return post(server, body, sign_for("shop", body, **sign_options))


def with_headers(**changes):
    """A signed delivery of GOOD whose headers are then changed (None removes one)."""
    def case(server):
        body = body_bytes(GOOD)
        headers = sign_for("shop", body)
        for name, value in changes.items():
            name = name.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return post(server, body, headers)
    return case


def raw(server, head, chunks=()):
    """Send raw bytes (for lying or missing Content-Length); tolerate the server closing early."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        try:
            sock.sendall(head)
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
                if b"\r\n\r\n" in reply and reply.split(b"\r\n\r\n", 1)[1].endswith(b"}"):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(reply.split(b" ", 2)[1])
    return status, {}, reply.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in reply else b""


def chunked(body_parts, headers):
    """A chunked request head and its chunks."""
    head = (f"POST {URL.format('shop')} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n")
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "Connection: close\r\n\r\n"
    chunks = [f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in body_parts] + [b"0\r\n\r\n"]
    return head.encode(), chunks


def small_chunked(server):
    body = body_bytes(GOOD)
    head, chunks = chunked([body[:10], body[10:]], sign_for("shop", body))
    return raw(server, head, chunks)


def big_chunked(server):
    part = b" " * 65536
    head, chunks = chunked([part] * 20, sign_for("shop", part * 20))
    return raw(server, head, chunks)


def lying_length(server):
    head = ("POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 10000000\r\nConnection: close\r\n\r\n").format(URL.format("shop")).encode()
    return raw(server, head, [b'{"email": "x"}'])


def honest_oversize(server):
    body = b'{"name": "' + b"x" * MAX + b'"}'
    return post(server, body, sign_for("shop", body))


def lernito(server, signature):
    return post(server, body_bytes(GOOD), {"X-Lernito-Signature": signature} if signature is not None else {},
                source="legacy")


def github(server, value):
    return post(server, body_bytes(GOOD), {"X-Hub-Signature-256": value, "X-GitHub-Delivery": "gh-1"},
                source="github")


def reused_id(server):
    signed(server, event_id="msg_reuse", timestamp=int(time.time()))
    return signed(server, {**GOOD, "courseIds": [BRIDGE_COURSE]}, event_id="msg_reuse", timestamp=int(time.time()))


def repeated_id(server):
    signed(server, event_id="msg_repeat", timestamp=int(time.time()))
    return signed(server, event_id="msg_repeat", timestamp=int(time.time()))


OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()


def good_signature_for(body, secret=OTHER_SECRET):
    """A well-formed signature made with a secret the source does not have."""
    return sign_for("shop", body, secret=secret)["webhook-signature"]


NOW = int(time.time())
SIG = "Invalid signature"
CASES = [
    # (id, how, expected status, text the answer must contain)
    ("no-signature-headers", lambda s: post(s, body_bytes(GOOD), {}), 401, SIG),
    ("signature-missing", with_headers(webhook_signature=None), 401, SIG),
    ("id-missing", with_headers(webhook_id=None), 401, SIG),
    ("timestamp-missing", with_headers(webhook_timestamp=None), 401, SIG),
    ("signature-empty", with_headers(webhook_signature=""), 401, SIG),
    ("signature-v1-empty", with_headers(webhook_signature="v1,"), 401, SIG),
    ("signature-other-version", with_headers(webhook_signature="v2," + base64.b64encode(b"x" * 32).decode()), 401,
     SIG),
    ("signature-not-base64", with_headers(webhook_signature="v1,!!!not-base64!!!"), 401, SIG),
    ("signature-wrong-length", with_headers(webhook_signature="v1," + base64.b64encode(b"short").decode()), 401, SIG),
    ("signature-non-ascii", with_headers(webhook_signature="v1,é" + "A" * 43), 401, SIG),
    ("signature-5000-chars", with_headers(webhook_signature="v1," + "A" * 5000), 401, SIG),
    ("signature-wrong-secret", with_headers(webhook_signature=good_signature_for(body_bytes(GOOD))), 401, SIG),
    ("body-tampered", lambda s: post(s, body_bytes({**GOOD, "mode": "verified"}), sign_for("shop", body_bytes(GOOD))),
     401, SIG),
    ("timestamp-stale", lambda s: signed(s, timestamp=NOW - 3600), 401, SIG),
    ("timestamp-future", lambda s: signed(s, timestamp=NOW + 3600), 401, SIG),
    ("timestamp-exponent", with_headers(webhook_timestamp="1.7e9"), 401, SIG),
    ("timestamp-plus-sign", with_headers(webhook_timestamp=f"+{NOW}"), 401, SIG),
    ("timestamp-negative", with_headers(webhook_timestamp=f"-{NOW}"), 401, SIG),
    ("timestamp-text", with_headers(webhook_timestamp="yesterday"), 401, SIG),
    ("timestamp-empty", with_headers(webhook_timestamp=""), 401, SIG),
    ("id-with-dots", lambda s: signed(s, event_id="msg.1.2"), 401, SIG),
    ("id-300-chars", lambda s: signed(s, event_id="m" * 300), 401, SIG),
    ("id-non-ascii", with_headers(webhook_id="msg_é"), 401, SIG),
    ("id-changed-after-signing", with_headers(webhook_id="msg_other"), 401, SIG),
    ("lernito-no-signature", lambda s: lernito(s, None), 401, SIG),
    ("lernito-not-hex", lambda s: lernito(s, "z" * 64), 401, SIG),
    ("lernito-other-data",
     lambda s: lernito(s, hmac.new(TEST_LEGACY_SECRET.encode(), b"{}", hashlib.sha256).hexdigest()), 401, SIG),
    ("github-no-prefix", lambda s: github(s, hmac.new(GITHUB_SECRET.encode(), body_bytes(GOOD), hashlib.sha256)
                                          .hexdigest()), 401, SIG),
    ("github-base64-not-hex", lambda s: github(s, "sha256=" + base64.b64encode(
        hmac.new(GITHUB_SECRET.encode(), body_bytes(GOOD), hashlib.sha256).digest()).decode()), 401, SIG),
    ("empty-body", lambda s: signed(s, b""), 400, "Invalid JSON"),
    ("empty-json-body", lambda s: signed(s, b" "), 400, "Invalid JSON"),
    ("invalid-utf8", lambda s: signed(s, b'{"email": "\xff\xfe"}'), 400, "not valid UTF-8"),
    ("byte-order-mark", lambda s: signed(s, b"\xef\xbb\xbf" + body_bytes(GOOD)), 400, "byte order mark"),
    ("json-array", lambda s: signed(s, b"[]"), 400, "must be a JSON object"),
    ("json-string", lambda s: signed(s, b'"hello"'), 400, "must be a JSON object"),
    ("json-number", lambda s: signed(s, b"42"), 400, "must be a JSON object"),
    ("json-null", lambda s: signed(s, b"null"), 400, "must be a JSON object"),
    ("duplicate-keys", lambda s: signed(s, b'{"email": "a@example.com", "email": "b@example.com"}'), 400,
     "Duplicate key"),
    ("nan", lambda s: signed(s, b'{"email": NaN}'), 400, "NaN"),
    ("infinity", lambda s: signed(s, b'{"n": Infinity}'), 400, "Infinity"),
    ("minus-infinity", lambda s: signed(s, b'{"n": -Infinity}'), 400, "Infinity"),
    ("nesting-5000", lambda s: signed(s, b"[" * 5000 + b"]" * 5000), 400, "nested deeper"),
    ("nesting-40", lambda s: signed(s, b'{"a":' * 40 + b"1" + b"}" * 40), 400, "nested deeper"),
    ("number-5000-digits", lambda s: signed(s, b'{"n": ' + b"9" * 5000 + b"}"), 400, "Number too long"),
    ("number-overflow", lambda s: signed(s, b'{"n": 1e999}'), 400, "Number out of range"),
    ("lone-surrogate", lambda s: signed(s, b'{"email": "\\udc00@example.com"}'), 400, "surrogate"),
    ("body-over-cap", honest_oversize, 413, "Body larger than"),
    ("length-lies-over-cap", lying_length, 413, "Body larger than"),
    ("chunked-over-cap", big_chunked, 413, "Body larger than"),
    ("content-type-text", lambda s: post(s, body_bytes(GOOD), {"Content-Type": "text/plain"}), 415, "Content-Type"),
    ("content-type-form", lambda s: post(s, body_bytes(GOOD), {"Content-Type": "application/x-www-form-urlencoded"}),
     415, "Content-Type"),
    ("content-type-multipart", lambda s: post(s, body_bytes(GOOD), {"Content-Type": "multipart/form-data; b=x"}),
     415, "Content-Type"),
    ("content-type-missing", lambda s: s.request("POST", URL.format("shop"), body=body_bytes(GOOD)), 415,
     "Content-Type"),
    ("unknown-source", lambda s: post(s, body_bytes(GOOD), {}, source="nope"), 404, "Unknown webhook source"),
    ("source-odd-characters", lambda s: post(s, body_bytes(GOOD), {}, path="/api/lms-bridge/v1/webhooks/sh%00op%20x/"),
     404, "Unknown webhook source"),
    ("closed-source", lambda s: post(s, body_bytes(GOOD), {}, source="closed"), 503, "not configured"),
    ("method-get", lambda s: s.request("GET", URL.format("shop")), 405, "not allowed"),
    ("method-put", lambda s: s.request("PUT", URL.format("shop"), body=b"{}"), 405, "not allowed"),
    ("method-delete", lambda s: s.request("DELETE", URL.format("shop")), 405, "not allowed"),
    ("method-patch", lambda s: s.request("PATCH", URL.format("shop"), body=b"{}"), 405, "not allowed"),
    ("email-missing", lambda s: signed(s, {"courseIds": [DEMO_COURSE]}), 400, "email"),
    ("course-ids-missing", lambda s: signed(s, {"email": "ada@example.com"}), 400, "courseIds"),
    ("course-ids-empty", lambda s: signed(s, {**GOOD, "courseIds": []}), 400, "courseIds"),
    ("course-ids-101", lambda s: signed(s, {**GOOD, "courseIds": [f"course-v1:O+C+{n}" for n in range(101)]}), 400,
     "courseIds"),
    ("course-ids-repeated", lambda s: signed(s, {**GOOD, "courseIds": [DEMO_COURSE, DEMO_COURSE]}), 400,
     "Duplicate course id"),
    ("course-ids-string", lambda s: signed(s, {**GOOD, "courseIds": DEMO_COURSE}), 400, "courseIds"),
    ("course-id-number", lambda s: signed(s, {**GOOD, "courseIds": [123]}), 400, "Must be a string"),
    ("course-key-invalid", lambda s: signed(s, {**GOOD, "courseIds": ["invalid-course-id"]}), 400,
     "Invalid course key format: invalid-course-id"),
    ("course-key-library", lambda s: signed(s, {**GOOD, "courseIds": ["library-v1:Org+Lib"]}), 400,
     "Invalid course key format"),
    ("course-unknown", lambda s: signed(s, {**GOOD, "courseIds": ["course-v1:Nope+Nope+Nope"]}), 400,
     "does not exist"),
    ("mode-unknown", lambda s: signed(s, {**GOOD, "mode": "platinum"}), 400, "does not offer mode 'platinum'"),
    ("mode-not-a-slug", lambda s: signed(s, {**GOOD, "mode": "no such mode!"}), 400, "mode"),
    ("action-unknown", lambda s: signed(s, {**GOOD, "action": "delete"}), 400, "action"),
    ("email-invalid", lambda s: signed(s, {**GOOD, "email": "not-an-email"}), 400, "email"),
    ("email-number", lambda s: signed(s, {**GOOD, "email": 42}), 400, "email"),
    ("email-too-long", lambda s: signed(s, {**GOOD, "email": "a" * 250 + "@example.com"}), 400, "email"),
    ("name-too-long", lambda s: signed(s, {**GOOD, "name": "x" * 1000}), 400, "name"),
    ("id-reused-with-other-body", reused_id, 409, "different body"),
    # Positive controls: the same machinery accepts what is right.
    ("rotated-secret-accepted", lambda s: signed(s, secret=TEST_SECRET_OLD), 200, "verified for 1 course"),
    ("several-signatures-one-valid", with_headers(webhook_signature="v1,AAAA v1," + "B" * 43 + "= " + sign_for(
        "shop", body_bytes(GOOD), event_id="msg_multi", timestamp=NOW)["webhook-signature"], webhook_id="msg_multi",
        webhook_timestamp=str(NOW)), 200, "verified for 1 course"),
    ("chunked-small-accepted", small_chunked, 200, "verified for 1 course"),
    ("no-trailing-slash", lambda s: post(s, body_bytes(GOOD), sign_for("shop", body_bytes(GOOD)),
                                         path=URL.format("shop").rstrip("/")), 200, "verified for 1 course"),
    ("id-repeated-same-body", repeated_id, 200, "verified for 1 course"),
]


def snapshot():
    """What a rejected request must not change."""
    return (EnrollmentOperation.objects.count(), CourseEnrollment.objects.count(),
            CourseEnrollmentAllowed.objects.count(), WebhookDelivery.objects.filter(signature_valid=True).count())


def test_the_catalogue_is_large_enough():
    """Expected behavior: at least 60 bad requests are exercised (besides the positive controls)."""
    assert len([case for case in CASES if case[2] >= 400]) >= 60


@pytest.mark.parametrize("case_id,send,expected,text", CASES, ids=[case[0] for case in CASES])
def test_bad_request(live_gunicorn, courses, ada, case_id, send, expected, text):
    """Expected behavior: the expected status and message; never 5xx or 3xx; rejections write only their record."""
    before = snapshot()
    rejected_before = WebhookDelivery.objects.filter(signature_valid=False).count()
    status, _, body = send(live_gunicorn)
    assert not 500 <= status < 600 or expected == 503, (case_id, status, body, live_gunicorn.output())
    assert not 300 <= status < 400, (case_id, status)
    assert status == expected, (case_id, status, body)
    assert text in body.decode("utf-8", "replace"), (case_id, body)
    json.loads(body)  # always JSON
    if expected == 401:
        assert snapshot() == before
        assert WebhookDelivery.objects.filter(signature_valid=False).count() == rejected_before + 1
