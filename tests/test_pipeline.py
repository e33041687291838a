"""
The pipeline through its public surface: the bulk format over HTTP, validation of
the whole delivery, set-based reads, the async answer, the sweeper, the signals.
"""
import re

import pytest
from common.djangoapps.student.models import CourseEnrollment, CourseEnrollmentAllowed, ManualEnrollmentAudit
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lms_bridge import signals
from lms_bridge.models import DeliveryStatus, EnrollmentOperation, WebhookDelivery

from .conftest import BRIDGE_COURSE, DEMO_COURSE, enrollment_of
from .signing import post_webhook
from .tools.bench import TRANSACTION_CONTROL

pytestmark = pytest.mark.django_db



def statements(captured):
    """The SQL statements a block ran, without transaction control (as MySQL counts them)."""
    return [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(TRANSACTION_CONTROL)]


def cohort(*emails, courses=(DEMO_COURSE, BRIDGE_COURSE), **extra):
    return {"learners": [{"email": email} for email in emails], "courseIds": list(courses), **extra}


class TestBulkDeliveries:
    def test_every_learner_in_every_course(self, client, courses, ada, grace):
        """Expected behavior: 3 learners x 2 courses -> 6 operations, outcomes per pair, counts."""
        response = post_webhook(client, cohort("ada@example.com", "grace@example.com", "new@example.com"),
                                source="cohorts")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["success"] is True
        assert body["pairs"] == 6
        assert body["counts"] == {"enrolled": 2, "allowed": 4}
        assert {(r["email"], r["courseId"], r["outcome"]) for r in body["results"]} == {
            ("ada@example.com", DEMO_COURSE, "enrolled"), ("ada@example.com", BRIDGE_COURSE, "enrolled"),
            ("grace@example.com", DEMO_COURSE, "allowed"), ("grace@example.com", BRIDGE_COURSE, "allowed"),
            ("new@example.com", DEMO_COURSE, "allowed"), ("new@example.com", BRIDGE_COURSE, "allowed"),
        }
        assert EnrollmentOperation.objects.count() == 6
        assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)
        assert CourseEnrollmentAllowed.objects.count() == 4

    def test_sent_again_nothing_changes(self, client, courses, ada):
        """Expected behavior: the same cohort again -> already_enrolled / already_allowed, no new audit row."""
        post_webhook(client, cohort("ada@example.com", "new@example.com"), source="cohorts")
        audits = ManualEnrollmentAudit.objects.count()
        response = post_webhook(client, cohort("ada@example.com", "new@example.com"), source="cohorts")
        assert response.json()["counts"] == {"already_enrolled": 2, "already_allowed": 2}
        assert ManualEnrollmentAudit.objects.count() == audits

    def test_explicit_pairs_with_their_own_actions(self, client, courses, ada):
        """Expected behavior: enroll in one course and unenroll from another in one delivery."""
        post_webhook(client, {"email": "ada@example.com", "courseIds": [BRIDGE_COURSE]})
        response = post_webhook(client, {"enrollments": [
            {"email": "ada@example.com", "courseId": DEMO_COURSE, "mode": "verified"},
            {"email": "ada@example.com", "courseId": BRIDGE_COURSE, "action": "unenroll"},
        ]}, source="cohorts")
        assert response.status_code == 200, response.content
        assert response.json()["counts"] == {"enrolled": 1, "unenrolled": 1}
        assert enrollment_of(ada, DEMO_COURSE) == ("verified", True)
        assert enrollment_of(ada, BRIDGE_COURSE)[1] is False

    def test_more_pairs_than_max_pairs_is_a_400_naming_the_limit(self, client, courses):
        """Expected behavior: 51 pairs on a source with MAX_PAIRS 50 -> 400, nothing done."""
        emails = [f"learner{n}@example.com" for n in range(51)]
        response = post_webhook(client, cohort(*emails, courses=[DEMO_COURSE]), source="cohorts")
        assert response.status_code == 400
        assert "MAX_PAIRS" in response.json()["message"]
        assert EnrollmentOperation.objects.count() == 0
        assert WebhookDelivery.objects.get().status == DeliveryStatus.INVALID

    def test_one_bad_course_refuses_the_whole_delivery(self, client, courses, ada):
        """Expected behavior: validation is all-or-nothing: an unknown course -> 400, no pair done."""
        response = post_webhook(client, {"enrollments": [
            {"email": "ada@example.com", "courseId": DEMO_COURSE},
            {"email": "ada@example.com", "courseId": "course-v1:edX+Nope+2020"},
        ]}, source="cohorts")
        assert response.status_code == 400
        assert response.json()["message"] == "Course course-v1:edX+Nope+2020 does not exist"
        assert enrollment_of(ada, DEMO_COURSE) == (None, None)
        assert EnrollmentOperation.objects.count() == 0

    def test_a_mode_one_course_lacks_refuses_the_whole_delivery(self, client, courses, ada):
        response = post_webhook(client, cohort("ada@example.com", mode="verified"), source="cohorts")
        assert response.status_code == 400
        assert response.json()["message"] == f"Course {BRIDGE_COURSE} does not offer mode 'verified'"
        assert CourseEnrollment.objects.count() == 0

    def test_validation_queries_do_not_grow_with_the_courses(self, client, ada):
        """Expected behavior: every course and mode checked with a constant number of queries."""
        from .conftest import make_course  # pylint: disable=import-outside-toplevel

        keys = [str(make_course(f"course-v1:Q+C{n}+2026", ("audit", "verified"))) for n in range(30)]
        counts = []
        for number in (3, 30):
            with CaptureQueriesContext(connection) as captured:
                response = post_webhook(client, cohort("ada@example.com", courses=keys[:number], mode="verified"),
                                        source="cohorts")
            assert response.status_code == 200
            with CaptureQueriesContext(connection) as captured:
                response = post_webhook(client, cohort("ada@example.com", courses=keys[:number], mode="verified"),
                                        source="cohorts")
            assert response.json()["counts"] == {"already_enrolled": number}
            counts.append(len(statements(captured)))
        assert counts[0] == counts[1] <= 10, counts

    def test_an_already_enrolled_learner_costs_no_lock_and_no_write_but_the_audit(self, client, courses, ada):
        """Expected behavior: nothing to change -> no SELECT ... FOR UPDATE, one INSERT of operations."""
        post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE, BRIDGE_COURSE]})
        with CaptureQueriesContext(connection) as captured:
            response = post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE, BRIDGE_COURSE]})
        assert [r["outcome"] for r in response.json()["results"]] == ["already_enrolled", "already_enrolled"]
        sql = statements(captured)
        assert not [s for s in sql if "FOR UPDATE" in s.upper()]
        assert len([s for s in sql if s.upper().startswith("INSERT")]) == 2  # the delivery and its operations
        assert len(sql) <= 10, sql

    def test_a_batch_reads_its_accounts_once_and_writes_its_outcomes_per_course(self, client, courses, ada,
                                                                               django_user_model):
        """
        Expected behavior: 2 learners x 2 courses, all new -> the accounts read twice in all (the bulk
        read, then the batch's one locking read by id), not once per pair; one outcome UPDATE per course.
        """
        django_user_model.objects.create_user("alan", "alan@example.com", "pw", is_active=True)
        with CaptureQueriesContext(connection) as captured:
            response = post_webhook(client, cohort("ada@example.com", "alan@example.com"), source="cohorts")
        assert response.json()["counts"] == {"enrolled": 4}, response.content
        assert ManualEnrollmentAudit.objects.count() == 4
        sql = statements(captured)
        accounts = [s for s in sql if re.search(r'FROM [`"]auth_user[`"]', s)]
        assert len(accounts) == 2, accounts
        if connection.vendor == "mysql":
            assert [s for s in sql if "FOR UPDATE" in s.upper()] == [accounts[1]]
        outcomes = [s for s in sql if re.match(r'UPDATE [`"]lms_bridge_enrollmentoperation[`"]', s)]
        assert len(outcomes) == 2, outcomes
        assert set(EnrollmentOperation.objects.values_list("outcome", "attempts")) == {("enrolled", 1)}


class TestOnePairOneRow:
    def test_the_same_learner_in_two_letter_cases_is_one_pair(self, client, courses):
        response = post_webhook(client, {"enrollments": [
            {"email": "new@example.com", "courseId": DEMO_COURSE},
            {"email": "NEW@example.com", "courseId": DEMO_COURSE},
        ]}, source="cohorts")
        assert response.status_code == 400
        assert "listed twice" in response.json()["message"]

    def test_lookalike_emails_are_two_learners_with_two_rows(self, client, courses):
        """Expected behavior: emails differing in accents are two pairs, on every collation."""
        response = post_webhook(client, {"enrollments": [
            {"email": "ada@example.com", "courseId": DEMO_COURSE},
            {"email": "ada@exämple.com", "courseId": DEMO_COURSE},
        ]}, source="cohorts")
        assert response.status_code == 200, response.content
        assert EnrollmentOperation.objects.count() == 2


class TestAsyncAnswer:
    def test_a_valid_delivery_is_recorded_and_answered_202_even_with_the_broker_down(self, client, courses, ada):
        """Expected behavior: 202 with the delivery id; nothing lost: the sweeper processes it."""
        response = post_webhook(client, cohort("ada@example.com", "new@example.com"), source="cohorts-async")
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["success"] is True and body["pairs"] == 4
        delivery = WebhookDelivery.objects.get(uuid=body["delivery"])
        assert delivery.status == DeliveryStatus.RECEIVED
        assert EnrollmentOperation.objects.count() == 0
        call_command("lms_bridge_sweep", "--older-than", "0", "--here")
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PROCESSED
        assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)
        assert EnrollmentOperation.objects.filter(outcome="allowed").count() == 2

    def test_a_bad_course_is_still_a_400_at_once(self, client, courses):
        response = post_webhook(client, cohort("ada@example.com", courses=["course-v1:edX+Nope+2020"]),
                                source="cohorts-async")
        assert response.status_code == 400
        assert WebhookDelivery.objects.get().status == DeliveryStatus.INVALID

    def test_the_ack_asks_about_a_course_once_a_minute_and_the_worker_always(self, client, courses, ada):
        """
        Expected behavior: a course (and mode) found to exist is not looked up again by the next
        acknowledgements; an unknown course is looked up, and refused, every time; a course gone
        after the acknowledgement is found by the worker, which changes nothing.
        """
        from openedx.core.djangoapps.content.course_overviews.models import CourseOverview

        def ack(payload):
            with CaptureQueriesContext(connection) as captured:
                response = post_webhook(client, payload, source="shop-async")
            return response, [sql for sql in statements(captured) if sql.upper().startswith("SELECT")
                              and ("courseoverview" in sql.lower() or "coursemode" in sql.lower())]

        first, looked_up = ack({"email": "ada@example.com", "courseIds": [DEMO_COURSE], "mode": "verified"})
        assert first.status_code == 202, first.content
        assert looked_up  # the course and its modes
        again, looked_up = ack({"email": "new@example.com", "courseIds": [DEMO_COURSE], "mode": "verified"})
        assert again.status_code == 202
        assert looked_up == []
        for _ in range(2):
            unknown, looked_up = ack({"email": "ada@example.com", "courseIds": ["course-v1:edX+Nope+2020"]})
            assert unknown.status_code == 400
            assert looked_up
        CourseOverview.objects.filter(id=courses[DEMO_COURSE]).delete()
        gone, _ = ack({"email": "ada@example.com", "courseIds": [DEMO_COURSE]})
        assert gone.status_code == 202  # trusted for a minute ...
        call_command("lms_bridge_sweep", "--older-than", "0", "--here")
        # ... but the worker checks again: all three acknowledged deliveries are refused, nothing changed.
        for accepted in (first, again, gone):
            delivery = WebhookDelivery.objects.get(uuid=accepted.json()["delivery"])
            assert delivery.status == DeliveryStatus.INVALID
            assert "does not exist" in delivery.response_body["message"]
        assert not CourseEnrollment.objects.exists()
        assert not CourseEnrollmentAllowed.objects.exists()

    def test_the_senders_retry_of_a_queued_delivery_is_202_again(self, client, courses):
        first = post_webhook(client, cohort("ada@example.com"), source="cohorts-async", event_id="msg_q")
        again = post_webhook(client, cohort("ada@example.com"), source="cohorts-async", event_id="msg_q")
        assert (first.status_code, again.status_code) == (202, 202)
        assert first.json()["delivery"] == again.json()["delivery"]


class TestSignals:
    def test_signals_are_sent_on_commit_for_changes_only(self, client, courses, ada,
                                                         django_capture_on_commit_callbacks):
        processed, changed = [], []

        def on_processed(sender, delivery, status, counts, **kwargs):  # pylint: disable=unused-argument
            processed.append((status, counts))

        def on_changed(sender, email, course_id, outcome, **kwargs):  # pylint: disable=unused-argument
            changed.append((email, course_id, outcome))

        signals.delivery_processed.connect(on_processed)
        signals.enrollment_changed.connect(on_changed)
        try:
            with django_capture_on_commit_callbacks(execute=True):
                post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE]})
            with django_capture_on_commit_callbacks(execute=True):
                post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE, BRIDGE_COURSE]})
        finally:
            signals.delivery_processed.disconnect(on_processed)
            signals.enrollment_changed.disconnect(on_changed)
        assert changed == [("ada@example.com", DEMO_COURSE, "enrolled"), ("ada@example.com", BRIDGE_COURSE, "enrolled")]
        assert processed == [("processed", {"enrolled": 1}), ("processed", {"already_enrolled": 1, "enrolled": 1})]

    def test_a_receiver_that_raises_undoes_nothing(self, client, courses, ada, django_capture_on_commit_callbacks):
        def broken(**kwargs):
            raise RuntimeError("receiver bug")

        signals.enrollment_changed.connect(broken)
        try:
            with django_capture_on_commit_callbacks(execute=True):
                response = post_webhook(client, {"email": "ada@example.com", "courseIds": [DEMO_COURSE]})
        finally:
            signals.enrollment_changed.disconnect(broken)
        assert response.status_code == 200
        assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)


class TestOutsideARequest:
    def test_a_worker_never_reads_a_previous_deliverys_cached_state(self, client, courses, ada):
        """
        Expected behavior: the platform caches enrollment states per request; a task or
        command handles many deliveries in one "request", so processing clears that cache:
        a change made elsewhere in between (another worker, staff) is seen.
        """
        from common.djangoapps.student.models import CourseEnrollment as Enrollment

        from lms_bridge.processing import process_delivery

        first = post_webhook(client, cohort("ada@example.com", courses=[DEMO_COURSE]), source="cohorts-async")
        second = post_webhook(client, cohort("ada@example.com", courses=[DEMO_COURSE]), source="cohorts-async")
        process_delivery(WebhookDelivery.objects.get(uuid=first.json()["delivery"]))
        assert enrollment_of(ada, DEMO_COURSE) == ("audit", True)
        # Another process unenrolls her (its own cache, not this one's).
        Enrollment.objects.filter(user=ada).update(is_active=False)
        result = process_delivery(WebhookDelivery.objects.get(uuid=second.json()["delivery"]))
        assert result.counts == {"enrolled": 1}
        assert Enrollment.objects.get(user=ada).is_active is True

    def test_a_worker_sees_modes_changed_elsewhere_between_deliveries(self, client, courses, ada, django_user_model):
        """
        Expected behavior: the platform caches a course's modes per request, as it does enrollment
        states; after another process replaced BRIDGE_COURSE's audit mode by honor, the next delivery
        in the same worker enrolls in honor, the course's default mode now.
        """
        from common.djangoapps.course_modes.models import CourseMode  # pylint: disable=import-outside-toplevel

        from lms_bridge.processing import process_delivery  # pylint: disable=import-outside-toplevel

        alan = django_user_model.objects.create_user("alan", "alan@example.com", "pw", is_active=True)
        first = post_webhook(client, cohort("ada@example.com", courses=[BRIDGE_COURSE]), source="cohorts-async")
        second = post_webhook(client, cohort("alan@example.com", courses=[BRIDGE_COURSE]), source="cohorts-async")
        process_delivery(WebhookDelivery.objects.get(uuid=first.json()["delivery"]))
        assert enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)
        # Another process's change: this one's signal receivers never hear of it.
        CourseMode.objects.filter(course_id=courses[BRIDGE_COURSE]).update(mode_slug="honor")
        result = process_delivery(WebhookDelivery.objects.get(uuid=second.json()["delivery"]))
        assert result.counts == {"enrolled": 1}
        assert enrollment_of(alan, BRIDGE_COURSE) == ("honor", True)
