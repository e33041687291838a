"""
Tests of the webhook endpoint, through HTTP (a CSRF-enforcing client, with
ATOMIC_REQUESTS on as in Tutor).
"""
import hashlib
import hmac
import json
import time

import pytest
from common.djangoapps.student.models import CourseEnrollmentAllowed, ManualEnrollmentAudit
from django.test import override_settings
from django.utils import timezone

from lms_bridge.models import DeliveryStatus, EnrollmentOperation, WebhookDelivery

from .backends import fakes
from .conftest import BRIDGE_COURSE, DEMO_COURSE, enrollment_of
from .signing import GITHUB_SECRET, TEST_LEGACY_SECRET, TEST_SECRET_OLD, WEBHOOK_URL, body_bytes, post_webhook, sign_for

pytestmark = pytest.mark.django_db

SCRIPTED = [{"BACKEND": "tests.backends.fakes.ScriptedBackend", "SELECTOR_REGEX": ".*"}]


def payload(**fields):
    data = {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}
    data.update(fields)
    return data


@pytest.fixture
def scripted():
    for state in (fakes.SCRIPT, fakes.EXISTS_SCRIPT, fakes.CALLS):
        state.clear()
    with override_settings(LMS_BRIDGE_BACKENDS=SCRIPTED):
        yield fakes
    fakes.SCRIPT.clear()
    fakes.EXISTS_SCRIPT.clear()


class TestEnrollment:
    """Deliveries that enroll."""

    def test_enrolls_an_active_learner(self, client, courses, ada):
        """Expected behavior: 200, the seed's message, enrollments in the default mode, an audit trail."""
        response = post_webhook(client, payload(courseIds=[DEMO_COURSE, BRIDGE_COURSE]), event_id="msg_enroll_1")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["success"] is True
        assert body["message"] == "User enrollment status verified for 2 course(s)"
        assert [r["outcome"] for r in body["results"]] == ["enrolled", "enrolled"]
        assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)
        delivery = WebhookDelivery.objects.get(uuid=body["delivery"])
        assert delivery.status == DeliveryStatus.PROCESSED and delivery.event_id == "msg_enroll_1"
        assert delivery.signature_valid and delivery.secret_index == 0
        assert delivery.operations.count() == 2
        audit = ManualEnrollmentAudit.objects.filter(enrolled_email="ada@example.com")
        assert audit.count() == 2
        assert all("lms_bridge" in a.reason and "'shop'" in a.reason and str(delivery.uuid) in a.reason for a in audit)
        assert all(a.enrolled_by is None and a.enrollment is not None for a in audit)

    def test_mode_is_applied(self, client, courses, ada):
        """Expected behavior: mode=verified enrolls in verified."""
        response = post_webhook(client, payload(mode="verified"))
        assert response.status_code == 200
        assert enrollment_of(ada, DEMO_COURSE) == ("verified", True)

    def test_email_matches_case_insensitively(self, client, courses, ada):
        """Expected behavior: ADA@Example.com is ada@example.com."""
        response = post_webhook(client, payload(email="ADA@Example.COM"))
        assert response.json()["results"][0]["outcome"] == "enrolled"
        assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)

    def test_unknown_email_gets_an_allowance(self, client, courses):
        """Expected behavior: no account -> allowed (auto_enroll), with the seed's message."""
        response = post_webhook(client, payload(email="newcomer@example.com"))
        body = response.json()
        assert response.status_code == 200
        assert body["message"] == "Enrollment allowance verified for 1 course(s)"
        assert body["results"][0]["outcome"] == "allowed"
        assert CourseEnrollmentAllowed.objects.get(email="newcomer@example.com").auto_enroll is True

    def test_unenroll(self, client, courses, ada):
        """Expected behavior: action=unenroll deactivates the enrollment."""
        post_webhook(client, payload())
        response = post_webhook(client, payload(action="unenroll"))
        assert response.status_code == 200
        assert response.json()["message"] == "Unenrollment verified for 1 course(s)"
        assert response.json()["results"][0]["outcome"] == "unenrolled"
        assert enrollment_of(ada, DEMO_COURSE) == ("audit", False)

    def test_session_cookie_does_not_trigger_csrf(self, client, courses, ada, admin_user):
        """Expected behavior: the view ignores the LMS's session auth, so a logged-in browser's cookie is harmless."""
        client.force_login(admin_user)
        assert post_webhook(client, payload()).status_code == 200

    def test_no_trailing_slash_is_not_redirected(self, client, courses, ada):
        """Expected behavior: the URL without its slash answers directly, never 3xx."""
        body = body_bytes(payload())
        url = WEBHOOK_URL.format(source="shop").rstrip("/")
        response = client.post(url, data=body, content_type="application/json", headers=sign_for("shop", body))
        assert response.status_code == 200

    def test_rotated_secret_is_accepted_and_recorded(self, client, courses, ada):
        """Expected behavior: the old secret still works and the delivery records which secret matched."""
        response = post_webhook(client, payload(), secret=TEST_SECRET_OLD)
        assert response.status_code == 200
        assert WebhookDelivery.objects.get().secret_index == 1

    def test_hmac_source(self, client, courses, ada):
        """Expected behavior: a GitHub-style signed delivery is processed, its delivery header is the id."""
        body = body_bytes(payload())
        headers = {
            "X-Hub-Signature-256": "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest(),
            "X-GitHub-Delivery": "gh-1",
        }
        response = post_webhook(client, body, source="github", headers=headers)
        assert response.status_code == 200
        assert WebhookDelivery.objects.get().event_id == "gh-1"

    def test_lernito_source_with_the_readme_script(self, client, courses, ada):
        """Expected behavior: a body signed as the lernito README does is accepted (a drop-in)."""
        data = {"email": "ada@example.com", "name": "Ada", "family": "Lovelace", "username": "ada",
                "courseIds": [DEMO_COURSE]}
        signature = hmac.new(TEST_LEGACY_SECRET.encode(), json.dumps(data, sort_keys=True).encode(),
                             hashlib.sha256).hexdigest()
        response = post_webhook(client, data, source="legacy", headers={"X-Lernito-Signature": signature})
        assert response.status_code == 200
        assert response.json()["message"] == "User enrollment status verified for 1 course(s)"


class TestIdempotency:
    """Repeated deliveries."""

    def test_same_id_same_body_replays_the_stored_answer(self, client, courses, ada):
        """Expected behavior: 200 with the same body, marked replayed, and no new effect."""
        first = post_webhook(client, payload(), event_id="msg_dup", timestamp=int(time.time()))
        second = post_webhook(client, payload(), event_id="msg_dup", timestamp=int(time.time()))
        assert second.status_code == 200
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert WebhookDelivery.objects.count() == 1
        assert EnrollmentOperation.objects.get().attempts == 1
        assert ManualEnrollmentAudit.objects.count() == 1

    def test_same_id_other_body_is_a_conflict(self, client, courses, ada):
        """Expected behavior: 409, nothing done for the second body, the conflict recorded."""
        post_webhook(client, payload(), event_id="msg_conflict")
        response = post_webhook(client, payload(courseIds=[BRIDGE_COURSE]), event_id="msg_conflict")
        assert response.status_code == 409
        assert response.json()["success"] is False
        assert enrollment_of(ada, BRIDGE_COURSE) == (None, None)
        assert WebhookDelivery.objects.filter(status=DeliveryStatus.CONFLICT).count() == 1

    def test_second_delivery_reports_already_enrolled(self, client, courses, ada):
        """Expected behavior: a new delivery for the same enrollment says already_enrolled."""
        post_webhook(client, payload(mode="verified"))
        response = post_webhook(client, payload())
        assert response.json()["results"][0]["outcome"] == "already_enrolled"
        assert enrollment_of(ada, DEMO_COURSE) == ("verified", True)

    def test_delivery_being_processed_answers_202(self, client, courses, ada):
        """Expected behavior: a copy arriving while another process holds the delivery gets 202."""
        post_webhook(client, payload(), event_id="msg_busy")
        WebhookDelivery.objects.update(status=DeliveryStatus.PROCESSING, processing_started_at=timezone.now())
        response = post_webhook(client, payload(), event_id="msg_busy")
        assert response.status_code == 202
        assert response.json()["success"] is True

    def test_stale_claim_is_taken_over(self, client, courses, ada):
        """Expected behavior: a delivery whose processor died long ago is processed by the retry."""
        post_webhook(client, payload(), event_id="msg_stale")
        WebhookDelivery.objects.update(
            status=DeliveryStatus.PROCESSING, processing_started_at=timezone.now() - timezone.timedelta(hours=1),
        )
        response = post_webhook(client, payload(), event_id="msg_stale")
        assert response.status_code == 200
        assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
        assert WebhookDelivery.objects.get().attempts == 2


class TestRejections:
    """What a sender can do wrong: each a clear answer with the right status, never a 5xx."""

    def test_bad_signatures_get_one_uniform_401(self, client, courses, ada):
        """Expected behavior: wrong secret, stale timestamp and missing header give byte-identical 401s."""
        body = body_bytes(payload())
        wrong = sign_for("shop", body, secret="whsec_" + "QUJD" * 8)
        stale = sign_for("shop", body, timestamp=int(time.time()) - 3600)
        missing = {k: v for k, v in sign_for("shop", body).items() if k != "webhook-signature"}
        responses = [post_webhook(client, body, headers=h) for h in (wrong, stale, missing, {})]
        assert {r.status_code for r in responses} == {401}
        assert len({r.content for r in responses}) == 1
        assert responses[0].json() == {"success": False, "message": "Invalid signature", "delivery": None,
                                       "results": []}
        rows = WebhookDelivery.objects.all()
        assert rows.count() == 4 and all(not r.signature_valid and r.status == "rejected" for r in rows)
        assert {r.signature_detail for r in rows} >= {"no signature matches", "webhook-timestamp too old"}
        assert EnrollmentOperation.objects.count() == 0
        assert enrollment_of(ada, DEMO_COURSE) == (None, None)

    def test_expected_signature_is_never_echoed(self, client, courses):
        """Expected behavior: the 401 body holds no signature material."""
        body = body_bytes(payload())
        good = sign_for("shop", body)["webhook-signature"]
        response = post_webhook(client, body + b" ", headers=sign_for("shop", body))
        assert good.split(",", 1)[1].encode() not in response.content

    def test_unknown_source_is_404_and_not_recorded(self, client):
        """Expected behavior: 404 JSON, nothing stored."""
        response = post_webhook(client, payload(), source="nope", headers={})
        assert response.status_code == 404
        assert response.json()["message"] == "Unknown webhook source"
        assert WebhookDelivery.objects.count() == 0

    @pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options"])
    def test_other_methods_are_405(self, client, method):
        """Expected behavior: only POST; others get 405 with Allow: POST."""
        response = getattr(client, method)(WEBHOOK_URL.format(source="shop"))
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"

    @override_settings(LMS_BRIDGE_MAX_BODY_BYTES=200)
    def test_oversized_body_is_413(self, client, courses):
        """Expected behavior: a body over the cap is refused with 413, and recorded without its content."""
        body = body_bytes(payload(name="x" * 500))
        response = post_webhook(client, body)
        assert response.status_code == 413
        delivery = WebhookDelivery.objects.get()
        assert delivery.response_status == 413 and delivery.body == ""

    def test_not_json_content_type_is_415(self, client, courses):
        """Expected behavior: a form-encoded delivery gets 415."""
        response = post_webhook(client, payload(), content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415

    @pytest.mark.parametrize("accept", ["text/html", "application/xml", "*/*", "nonsense"])
    def test_any_accept_header_gets_json(self, client, courses, ada, accept):
        """Expected behavior: the answer is JSON whatever Accept says (never 406)."""
        body = body_bytes(payload())
        headers = {**sign_for("shop", body), "Accept": accept}
        response = post_webhook(client, body, headers=headers)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"

    def test_json_with_charset_is_accepted(self, client, courses, ada):
        """Expected behavior: application/json; charset=utf-8 is JSON."""
        assert post_webhook(client, payload(), content_type="application/json; charset=utf-8").status_code == 200

    def test_closed_source_is_503(self, client, courses):
        """Expected behavior: a source with no usable secret refuses everything with 503, never opens."""
        response = post_webhook(client, payload(), source="closed", headers={})
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert WebhookDelivery.objects.get().status == DeliveryStatus.REJECTED

    @pytest.mark.parametrize("body,fragment", [
        (b'{"email": "a@example.com", "email": "b@example.com", "courseIds": []}', "Duplicate key"),
        (b'{"email": NaN}', "NaN is not valid JSON"),
        (b'{"n": Infinity}', "Infinity is not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper"),
        (b'{"n": ' + b"9" * 500 + b"}", "Number too long"),
        (b'{"email": "\xff"}', "not valid UTF-8"),
        (b"[]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b" ", "Invalid JSON"),
        (b'{"email": "\\ud800"}', "unpaired surrogate"),
    ])
    def test_hostile_json_is_400(self, client, courses, body, fragment):
        """Expected behavior: hostile or ambiguous JSON is a 400 with a clear message; nothing enrolled."""
        response = post_webhook(client, body)
        assert response.status_code == 400, response.content
        assert fragment in json.dumps(response.json()["message"])
        assert EnrollmentOperation.objects.count() == 0

    def test_missing_fields_are_listed(self, client, courses):
        """Expected behavior: the seed's format: message is a dict of field errors."""
        response = post_webhook(client, {"name": "x"})
        assert response.status_code == 400
        assert set(response.json()["message"]) == {"email", "courseIds"}

    @pytest.mark.parametrize("fields,message", [
        ({"courseIds": ["invalid-course-id"]}, "Invalid course key format: invalid-course-id"),
        ({"courseIds": ["course-v1:edX+Nope+2020"]}, "Course course-v1:edX+Nope+2020 does not exist"),
        ({"courseIds": [DEMO_COURSE, DEMO_COURSE]}, f"Duplicate course id: {DEMO_COURSE}"),
        ({"courseIds": []}, None),
        ({"courseIds": [f"course-v1:O+C+{n}" for n in range(101)]}, None),
        ({"courseIds": [BRIDGE_COURSE], "mode": "verified"}, f"Course {BRIDGE_COURSE} does not offer mode 'verified'"),
        ({"mode": "not a slug!"}, None),
        ({"action": "delete"}, None),
        ({"email": "not-an-email"}, None),
        ({"email": 42}, None),
        ({"courseIds": "course-v1:edX+DemoX+Demo_Course"}, None),
        ({"courseIds": [7]}, None),
        ({"courseIds": ["library-v1:edX+Lib"]}, "Invalid course key format: library-v1:edX+Lib"),
    ])
    def test_invalid_payloads_are_400(self, client, courses, ada, fields, message):
        """Expected behavior: 400, the seed's message where it has one, and the delivery marked invalid."""
        response = post_webhook(client, payload(**fields))
        assert response.status_code == 400, response.content
        if message:
            assert response.json()["message"] == message
        assert WebhookDelivery.objects.get().status == DeliveryStatus.INVALID
        assert EnrollmentOperation.objects.count() == 0

    def test_a_bad_course_leaves_nothing_half_done(self, client, courses, ada):
        """Expected behavior: one unknown course among valid ones -> 400 and no enrollment at all."""
        response = post_webhook(client, payload(courseIds=[DEMO_COURSE, "course-v1:edX+Nope+2020"]))
        assert response.status_code == 400
        assert [r["courseId"] for r in response.json()["results"]] == ["course-v1:edX+Nope+2020"]
        assert enrollment_of(ada, DEMO_COURSE) == (None, None)

    @override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "lms_bridge.backends.openedx.OpenEdxBackend",
                                             "SELECTOR_REGEX": r"course-v1:OrgA\+"}])
    def test_course_no_backend_handles_is_400(self, client, courses, ada):
        """Expected behavior: a course no SELECTOR_REGEX matches is refused with a clear message."""
        response = post_webhook(client, payload())
        assert response.status_code == 400
        assert response.json()["message"] == f"No LMS is configured for course {DEMO_COURSE}"


class TestFailures:
    """Backend failures: per course, recorded, retried without redoing what succeeded."""

    def test_permanent_failure_of_one_course(self, client, courses, ada, scripted):
        """Expected behavior: 200 with success false; the other course is enrolled; partially_failed."""
        from lms_bridge.backends.base import BackendError  # pylint: disable=import-outside-toplevel

        scripted.SCRIPT[BRIDGE_COURSE] = BackendError("Course is invitation-only")
        response = post_webhook(client, payload(courseIds=[DEMO_COURSE, BRIDGE_COURSE]))
        body = response.json()
        assert response.status_code == 200 and body["success"] is False
        assert body["message"] == "1 of 2 course(s) could not be processed"
        assert [(r["outcome"], r["detail"]) for r in body["results"]] == [
            ("enrolled", ""), ("failed", "Course is invitation-only")]
        assert WebhookDelivery.objects.get().status == DeliveryStatus.PARTIALLY_FAILED
        assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)

    def test_transient_failure_then_retry(self, client, courses, ada, scripted):
        """Expected behavior: 503 with Retry-After; the sender's retry finishes the job without redoing the rest."""
        from lms_bridge.backends.base import TransientBackendError  # pylint: disable=import-outside-toplevel

        scripted.SCRIPT[BRIDGE_COURSE] = TransientBackendError("LMS timed out")
        now = int(time.time())
        courses_ids = [DEMO_COURSE, BRIDGE_COURSE]
        response = post_webhook(client, payload(courseIds=courses_ids), event_id="msg_t", timestamp=now)
        assert response.status_code == 503 and response.headers["Retry-After"] == "60"
        scripted.SCRIPT.clear()
        scripted.CALLS.clear()
        retry = post_webhook(client, payload(courseIds=[DEMO_COURSE, BRIDGE_COURSE]), event_id="msg_t", timestamp=now)
        assert retry.status_code == 200 and retry.json()["success"] is True
        assert scripted.CALLS == [BRIDGE_COURSE]
        assert EnrollmentOperation.objects.get(course_id=DEMO_COURSE).attempts == 1
        assert EnrollmentOperation.objects.get(course_id=BRIDGE_COURSE).attempts == 2
        assert enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)

    def test_unexpected_error_is_contained(self, client, courses, ada, scripted, caplog):
        """Expected behavior: an unexpected exception fails one course; its text stays out of the reply and logs."""
        scripted.SCRIPT[BRIDGE_COURSE] = ValueError("secret detail about ada@example.com")
        response = post_webhook(client, payload(courseIds=[DEMO_COURSE, BRIDGE_COURSE]))
        assert response.status_code == 200
        assert b"secret detail" not in response.content
        assert "ada@example.com" not in caplog.text
        operation = EnrollmentOperation.objects.get(course_id=BRIDGE_COURSE)
        assert operation.outcome == "failed" and "secret detail" in operation.error


def test_no_pii_or_secret_in_logs(client, courses, ada, caplog):
    """
    Expected behavior: across accepted, rejected, invalid and failed
    deliveries, no log line at INFO or above holds an email, a secret or a signature.
    """
    caplog.set_level("INFO")
    body = body_bytes(payload(mode="verified"))
    headers = sign_for("shop", body)
    post_webhook(client, body, headers=headers)
    post_webhook(client, body, headers={**headers, "webhook-signature": "v1,AAAA"})
    post_webhook(client, payload(email="newcomer@example.com", courseIds=["bad-key"]))
    post_webhook(client, payload(email="newcomer@example.com"), source="legacy")
    post_webhook(client, payload(email="newcomer@example.com"), source="closed", headers={})
    text = "\n".join(record.getMessage() for record in caplog.records if record.levelno >= 20)
    assert "lms_bridge" in text
    for secret in ("ada@example.com", "newcomer@example.com", headers["webhook-signature"][3:], TEST_LEGACY_SECRET,
                   TEST_SECRET_OLD, "whsec_"):
        assert secret not in text


@pytest.mark.django_db(transaction=True)
def test_audit_row_survives_an_error_under_atomic_requests(courses, ada, scripted):
    """
    Expected behavior: with ATOMIC_REQUESTS on, a delivery whose processing
    blows up still leaves its committed record (the view is non-atomic), and
    the delivery is handed back for a retry.
    """
    from django.test import Client  # pylint: disable=import-outside-toplevel

    scripted.EXISTS_SCRIPT[DEMO_COURSE] = RuntimeError("a bug in a backend")
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    response = post_webhook(client, payload(), event_id="msg_crash")
    assert response.status_code == 500
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.RECEIVED
    scripted.EXISTS_SCRIPT.clear()
    assert post_webhook(client, payload(), event_id="msg_crash").status_code == 200
    assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)


class TestScopedSources:
    """COURSES and ACTIONS: what a source (and so a leaked secret) can do."""

    def test_a_course_outside_the_scope_is_400_with_nothing_done(self, client, courses, ada):
        """Expected behavior: one out-of-scope course among allowed ones -> 400 naming it, and no enrollment at all."""
        response = post_webhook(client, payload(courseIds=[BRIDGE_COURSE, DEMO_COURSE]), source="scoped")
        assert response.status_code == 400, response.content
        assert response.json()["message"] == f"Course {DEMO_COURSE} is outside the scope of source 'scoped'"
        assert [r["courseId"] for r in response.json()["results"]] == [DEMO_COURSE]
        assert enrollment_of(ada, BRIDGE_COURSE) == (None, None)
        assert EnrollmentOperation.objects.count() == 0

    def test_a_course_in_scope_is_enrolled(self, client, courses, ada):
        """Expected behavior: the scope's courses are processed as usual."""
        response = post_webhook(client, payload(courseIds=[BRIDGE_COURSE]), source="scoped")
        assert response.status_code == 200 and enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)

    def test_a_forbidden_action_is_400(self, client, courses, ada):
        """Expected behavior: a source limited to enroll cannot unenroll: 400 naming the action, nothing done."""
        post_webhook(client, payload(courseIds=[BRIDGE_COURSE]), source="scoped")
        response = post_webhook(client, payload(courseIds=[BRIDGE_COURSE], action="unenroll"), source="scoped")
        assert response.status_code == 400
        assert response.json()["message"] == "Source 'scoped' may not unenroll learners"
        assert enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)


def test_an_account_without_a_profile_is_a_clear_failure(client, courses, ada):
    """Expected behavior: 200 with success false; that course 'failed' with a detail support can act on."""
    from common.djangoapps.student.models import UserProfile  # pylint: disable=import-outside-toplevel

    UserProfile.objects.filter(user=ada).delete()
    response = post_webhook(client, payload())
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["outcome"] == "failed" and "has no profile" in result["detail"]
    assert enrollment_of(ada, DEMO_COURSE) == (None, None)


class TestMonitoring:
    """Each delivery's source and status reach the APM as custom attributes (edx-django-utils), never PII."""

    def test_processed_rejected_and_queued_deliveries_are_tagged(self, client, courses, ada):
        from .telemetry import RECORDED  # pylint: disable=import-outside-toplevel

        RECORDED.clear()
        post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE]})
        assert ("lms_bridge.source", "shop") in RECORDED
        assert ("lms_bridge.status", "processed") in RECORDED and ("lms_bridge.response_status", 200) in RECORDED
        RECORDED.clear()
        post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}, headers={})
        assert ("lms_bridge.status", "rejected") in RECORDED and ("lms_bridge.response_status", 401) in RECORDED
        RECORDED.clear()
        post_webhook(client, {"email": "ada@example.com", "courseIds": [BRIDGE_COURSE]}, event_id="msg_mon")
        post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}, event_id="msg_mon")
        assert ("lms_bridge.status", "conflict") in RECORDED and ("lms_bridge.response_status", 409) in RECORDED
        RECORDED.clear()
        post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}, source="shop-async")
        assert ("lms_bridge.status", "received") in RECORDED and ("lms_bridge.response_status", 202) in RECORDED
        assert not [value for _, value in RECORDED if "@" in str(value)]
