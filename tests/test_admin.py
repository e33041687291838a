"""
Tests of the Django admin: the audit and repair console (read-only lists,
filters, search, the operations inline, permissions, "reprocess").
"""
import csv
import io

import pytest
from common.djangoapps.student.models import CourseEnrollment
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from opaque_keys.edx.keys import CourseKey

from lms_bridge.backends.base import BackendError
from lms_bridge.models import DeliveryStatus, EnrollmentOperation, WebhookDelivery

from .backends import fakes
from .conftest import BRIDGE_COURSE, DEMO_COURSE, enrollment_of, make_course
from .signing import post_webhook

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/lms_bridge/webhookdelivery/"
OPERATIONS = "/admin/lms_bridge/enrollmentoperation/"


@pytest.fixture
def support(django_user_model):
    """A staff member with every permission of lms_bridge's models (view, reprocess, export)."""
    user = django_user_model.objects.create_user("support", "support@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="lms_bridge"))
    return user


@pytest.fixture
def viewer(django_user_model):
    """A staff member who may only view."""
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    view_permissions = Permission.objects.filter(content_type__app_label="lms_bridge", codename__startswith="view")
    user.user_permissions.set(view_permissions)
    return user


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def failed_delivery(courses, ada):
    """A delivery whose second course failed permanently."""
    fakes.SCRIPT.clear()
    fakes.SCRIPT[BRIDGE_COURSE] = BackendError("LMS said no")
    with override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]):
        response = post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE, BRIDGE_COURSE]})
        assert response.status_code == 200 and response.json()["success"] is False
        yield WebhookDelivery.objects.get(uuid=response.json()["delivery"])
    fakes.SCRIPT.clear()


class TestAdminLists:
    """Read-only lists, filters and search."""

    def test_staff_without_permission_sees_nothing(self, django_user_model, failed_delivery):
        """Expected behavior: staff need the model permissions."""
        staff = django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
        assert logged_in(staff).get(CHANGELIST).status_code == 403

    def test_list_filters_and_search(self, viewer, failed_delivery):
        """Expected behavior: the list shows the delivery; filter by status and search by email and course work."""
        client = logged_in(viewer)
        page = client.get(CHANGELIST)
        assert page.status_code == 200 and str(failed_delivery.event_id).encode() in page.content
        assert client.get(CHANGELIST, {"status__exact": "partially_failed"}).context["cl"].result_count == 1
        assert client.get(CHANGELIST, {"status__exact": "processed"}).context["cl"].result_count == 0
        assert client.get(CHANGELIST, {"q": "ada@example.com"}).context["cl"].result_count == 1
        assert client.get(CHANGELIST, {"q": "nobody@example.com"}).context["cl"].result_count == 0
        operations = client.get(OPERATIONS, {"q": BRIDGE_COURSE})
        assert operations.context["cl"].result_count == 1
        assert client.get(OPERATIONS, {"outcome__exact": "failed"}).context["cl"].result_count == 1

    def test_detail_shows_operations_inline_read_only(self, support, failed_delivery):
        """Expected behavior: the delivery page shows its operations; a POST changes nothing; no add."""
        client = logged_in(support)
        url = f"{CHANGELIST}{failed_delivery.pk}/change/"
        page = client.get(url)
        assert page.status_code == 200
        assert b"LMS said no" in page.content and BRIDGE_COURSE.encode() in page.content
        client.post(url, {"source": "tampered", "status": "processed"})
        failed_delivery.refresh_from_db()
        assert failed_delivery.source == "shop" and failed_delivery.status == DeliveryStatus.PARTIALLY_FAILED
        assert client.get(f"{CHANGELIST}add/").status_code == 403


class TestReprocess:
    """The repair action."""

    def test_reprocess_finishes_without_redoing(self, support, failed_delivery, ada):
        """Expected behavior: after the cause is fixed, reprocess completes the failed course only."""
        fakes.SCRIPT.clear()
        fakes.CALLS.clear()
        with override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]):
            response = logged_in(support).post(
                CHANGELIST, {"action": "reprocess", "_selected_action": [failed_delivery.pk]}, follow=True,
            )
        assert b"1 delivery reprocessed successfully" in response.content
        failed_delivery.refresh_from_db()
        assert failed_delivery.status == DeliveryStatus.PROCESSED and failed_delivery.attempts == 2
        assert fakes.CALLS == [BRIDGE_COURSE]
        assert enrollment_of(ada, BRIDGE_COURSE) == ("audit", True)
        assert EnrollmentOperation.objects.get(course_id=DEMO_COURSE).attempts == 1

    def test_reprocess_still_failing_is_reported(self, support, failed_delivery):
        """Expected behavior: a delivery that fails again is reported as still failing."""
        with override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]):
            response = logged_in(support).post(
                CHANGELIST, {"action": "reprocess", "_selected_action": [failed_delivery.pk]}, follow=True,
            )
        assert b"still has failures" in response.content

    def test_reprocess_invalid_after_the_course_is_published(self, support, ada):
        """Expected behavior: a delivery refused for an unknown course succeeds once the course exists."""
        response = post_webhook(Client(), {"email": "ada@example.com", "courseIds": ["course-v1:Late+C1+2026"]})
        assert response.status_code == 400
        delivery = WebhookDelivery.objects.get()
        make_course("course-v1:Late+C1+2026")
        logged_in(support).post(CHANGELIST, {"action": "reprocess", "_selected_action": [delivery.pk]})
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PROCESSED
        assert enrollment_of(ada, "course-v1:Late+C1+2026") == ("audit", True)

    def test_rejected_deliveries_are_never_processed(self, support, courses, ada):
        """Expected behavior: an unverified delivery is skipped by reprocess; nothing is enrolled."""
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}, headers={})
        delivery = WebhookDelivery.objects.get()
        response = logged_in(support).post(
            CHANGELIST, {"action": "reprocess", "_selected_action": [delivery.pk]}, follow=True,
        )
        assert b"was skipped" in response.content
        assert enrollment_of(ada, DEMO_COURSE) == (None, None)

    def test_reprocess_of_many_pairs_updates_their_rows_in_a_few_statements(self, support, courses,
                                                                               django_user_model):
        """
        Expected behavior: 20 learners x 2 courses, one course failed for all; meanwhile 5 of them were
        enrolled by other means. Reprocess updates the failed rows per chunk and outcome, not per pair:
        5 already_enrolled, 15 enrolled, every row once, the first course's rows untouched.
        """
        learners = [django_user_model.objects.create_user(f"l{n}", f"l{n}@example.com", "pw", is_active=True)
                    for n in range(20)]
        payload = {"learners": [{"email": user.email} for user in learners], "courseIds": [DEMO_COURSE, BRIDGE_COURSE]}
        fakes.SCRIPT.clear()
        fakes.SCRIPT[BRIDGE_COURSE] = BackendError("LMS said no")
        backends = [{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]
        with override_settings(LMS_BRIDGE_BACKENDS=backends):
            response = post_webhook(Client(), payload, source="cohorts")
            assert response.json()["counts"] == {"enrolled": 20, "failed": 20}, response.content
            fakes.SCRIPT.clear()
            for user in learners[:5]:
                CourseEnrollment.enroll(user, CourseKey.from_string(BRIDGE_COURSE))
            delivery = WebhookDelivery.objects.get()
            with CaptureQueriesContext(connection) as captured:
                response = logged_in(support).post(
                    CHANGELIST, {"action": "reprocess", "_selected_action": [delivery.pk]}, follow=True)
        assert b"1 delivery reprocessed successfully" in response.content
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PROCESSED
        assert delivery.response_body["counts"] == {"already_enrolled": 5, "enrolled": 35}
        rows = EnrollmentOperation.objects.filter(delivery=delivery)
        assert sorted(rows.filter(course_id=BRIDGE_COURSE).values_list("outcome", "attempts", "chunk")) == (
            [("already_enrolled", 2, 0)] * 5 + [("enrolled", 2, 0)] * 15)
        assert set(rows.filter(course_id=DEMO_COURSE).values_list("outcome", "attempts")) == {("enrolled", 1)}
        updates = [q["sql"] for q in captured.captured_queries
                   if q["sql"].startswith(('UPDATE "lms_bridge_enrollmentoperation"',
                                           "UPDATE `lms_bridge_enrollmentoperation`"))]
        # The 5 found enrolled, the 15 still to do, then the 15 outcomes (one per course).
        assert len(updates) == 3, updates

    def test_view_only_staff_cannot_reprocess(self, viewer, failed_delivery):
        """Expected behavior: without the reprocess permission the action is not available."""
        fakes.SCRIPT.clear()
        with override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]):
            logged_in(viewer).post(CHANGELIST, {"action": "reprocess", "_selected_action": [failed_delivery.pk]})
        failed_delivery.refresh_from_db()
        assert failed_delivery.status == DeliveryStatus.PARTIALLY_FAILED


class TestProgress:
    """A running delivery's progress and its chunks."""

    def test_a_delivery_on_celery_shows_pairs_done_and_its_chunks(self, support, courses, ada):
        """Expected behavior: the page shows '<done> of <total> pairs done' by outcome, and the chunks' states."""
        from lms_bridge.models import DeliveryChunk  # pylint: disable=import-outside-toplevel
        from lms_bridge.processing import process_chunk, start_delivery  # pylint: disable=import-outside-toplevel

        response = post_webhook(Client(), {"learners": [{"email": "ada@example.com"}, {"email": "new@example.com"}],
                                           "courseIds": [DEMO_COURSE, BRIDGE_COURSE]}, source="cohorts-async")
        assert response.status_code == 202
        delivery = WebhookDelivery.objects.get(uuid=response.json()["delivery"])
        with override_settings(LMS_BRIDGE_CHUNK_PAIRS=2):
            assert start_delivery(delivery.pk) == [0, 1]
            process_chunk(delivery.pk, 0)
        page = logged_in(support).get(f"{CHANGELIST}{delivery.pk}/change/").content.decode()
        assert "2 of 4 pairs done (enrolled: 2)" in page
        assert DeliveryChunk.objects.filter(delivery=delivery, status="done").count() == 1
        assert page.count("Pending") >= 1 and "Done" in page
        with override_settings(LMS_BRIDGE_CHUNK_PAIRS=2):
            process_chunk(delivery.pk, 1)
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PROCESSED
        assert delivery.response_body["counts"] == {"enrolled": 2, "allowed": 2}
        page = logged_in(support).get(f"{CHANGELIST}{delivery.pk}/change/").content.decode()
        assert "4 of 4 pairs done (allowed: 2, enrolled: 2)" in page


def with_permissions(django_user_model, username, *codenames):
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="lms_bridge", codename__in=codenames))
    return user


class TestNothingIsEditedOrDeleted:
    """No Save, no Delete, for anyone: the retention command is the only way records go."""

    def test_a_superuser_may_neither_save_nor_delete(self, django_user_model, failed_delivery):
        admin_user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
        client = logged_in(admin_user)
        page = client.get(f"{CHANGELIST}{failed_delivery.pk}/change/").content.decode()
        assert 'name="_save"' not in page and "deletelink" not in page
        assert client.get(f"{CHANGELIST}{failed_delivery.pk}/delete/").status_code == 403
        actions = client.get(CHANGELIST).context["action_form"].fields["action"].choices
        assert [value for value, _ in actions if value] == ["reprocess"]
        operation = EnrollmentOperation.objects.first()
        assert client.get(f"{OPERATIONS}{operation.pk}/delete/").status_code == 403
        assert client.get(OPERATIONS).context["action_form"] is None  # no action at all
        client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [failed_delivery.pk], "post": "yes"})
        assert WebhookDelivery.objects.filter(pk=failed_delivery.pk).exists()

    def test_the_permissions_are_view_reprocess_and_export(self):
        codenames = set(Permission.objects.filter(content_type__app_label="lms_bridge").values_list("codename",
                                                                                                     flat=True))
        assert codenames == {"view_webhookdelivery", "reprocess_webhookdelivery", "view_enrollmentoperation",
                             "export_enrollmentoperation", "view_deliverychunk"}


class TestDeliveryPage:
    def test_it_leads_with_what_support_needs_and_shows_body_and_answer_once(self, viewer, failed_delivery):
        page = logged_in(viewer).get(f"{CHANGELIST}{failed_delivery.pk}/change/").content.decode()
        first_fieldset = page[page.index("<fieldset"):page.index("</fieldset>")]
        for label in ("Status", "Learners", "Courses", "Sender was told", "Why"):
            assert label in first_fieldset, label
        assert "ada@example.com" in first_fieldset and BRIDGE_COURSE in first_fieldset
        assert f"{BRIDGE_COURSE}: failed (LMS said no)" in first_fieldset
        assert "200 " in first_fieldset
        assert "Idempotency key" not in first_fieldset and "Technical details" in page
        assert page.count("&quot;courseIds&quot;") == 1  # the body, once
        assert page.count("&quot;counts&quot;") == 1  # the answer, once

    def test_learners_and_courses_are_counted_over_the_whole_delivery(self, viewer, courses):
        """Expected behavior: 120 learners x 10 courses (1,200 pairs): 10 of each named, "and 110 more" learners."""
        from lms_bridge.processing import start_delivery  # pylint: disable=import-outside-toplevel

        course_ids = [f"course-v1:Many+C{n}+2026" for n in range(10)]
        for course_id in course_ids:
            make_course(course_id)
        response = post_webhook(Client(), {"learners": [{"email": f"l{n:03d}@example.com"} for n in range(120)],
                                           "courseIds": course_ids}, source="cohorts-async")
        assert response.status_code == 202, response.content
        delivery = WebhookDelivery.objects.get(uuid=response.json()["delivery"])
        start_delivery(delivery.pk)
        assert delivery.operations.count() == 1200
        page = logged_in(viewer).get(f"{CHANGELIST}{delivery.pk}/change/").content.decode()
        assert "l000@example.com, l001@example.com" in page and "(and 110 more)" in page
        assert course_ids[0] in page and "course-v1:Many+C9+2026" in page and "(and 0 more)" not in page

    def test_a_rejected_delivery_says_why(self, viewer, courses):
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}, headers={})
        delivery = WebhookDelivery.objects.get()
        page = logged_in(viewer).get(f"{CHANGELIST}{delivery.pk}/change/").content.decode()
        first_fieldset = page[page.index("<fieldset"):page.index("</fieldset>")]
        assert delivery.signature_detail and delivery.signature_detail in first_fieldset
        assert "401 Invalid signature" in first_fieldset


class TestSearchByEmail:
    def test_an_email_finds_every_delivery_invalid_and_rejected_included(self, viewer, courses, ada):
        """Expected behavior: processed (operations), invalid and rejected (no operations) deliveries all match."""
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE]})
        post_webhook(Client(), {"email": "Ada@Example.com", "courseIds": ["not a key"]})  # invalid
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}, headers={})  # rejected
        post_webhook(Client(), {"email": "grace@example.com", "courseIds": ["not a key"]})
        statuses = {row.status for row in
                    logged_in(viewer).get(CHANGELIST, {"q": "ada@example.com"}).context["cl"].result_list}
        assert statuses == {"processed", "invalid", "rejected"}
        assert logged_in(viewer).get(CHANGELIST, {"q": "grace@example.com"}).context["cl"].result_count == 1


class TestCsvExport:
    def test_it_exports_the_filtered_operations_with_formulas_escaped(self, django_user_model, courses, ada):
        fakes.SCRIPT.clear()
        fakes.SCRIPT[BRIDGE_COURSE] = BackendError("=HYPERLINK(\"http://evil.example\")")
        with override_settings(LMS_BRIDGE_BACKENDS=[{"BACKEND": "tests.backends.fakes.ScriptedBackend"}]):
            post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE, BRIDGE_COURSE]})
        fakes.SCRIPT.clear()
        exporter = with_permissions(django_user_model, "exporter", "view_enrollmentoperation",
                                    "export_enrollmentoperation")
        client = logged_in(exporter)
        listing = client.get(OPERATIONS, {"outcome__exact": "failed"}).content.decode()
        assert f"{OPERATIONS}export/?outcome__exact=failed" in listing
        response = client.get(f"{OPERATIONS}export/", {"outcome__exact": "failed"})
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert rows[0][:5] == ["created", "delivery", "source", "email", "course_id"]
        assert len(rows) == 2  # the filter holds: only the failed pair
        assert rows[1][4] == BRIDGE_COURSE and rows[1][8] == "failed"
        assert rows[1][9].startswith("'=HYPERLINK")
        everything = list(csv.reader(io.StringIO(b"".join(client.get(f"{OPERATIONS}export/").streaming_content)
                                                 .decode())))
        assert len(everything) == 3

    def test_export_needs_its_own_permission(self, viewer, failed_delivery):
        client = logged_in(viewer)
        assert client.get(f"{OPERATIONS}export/").status_code == 403
        assert "export/" not in client.get(OPERATIONS).content.decode()


class TestDashboard:
    DASHBOARD = f"{CHANGELIST}dashboard/"

    def test_per_day_failure_reasons_and_sources(self, viewer, failed_delivery, courses):
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": ["course-v1:edX+Nope+2020"]})
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": ["course-v1:edX+Nope+2020"]})
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE]}, headers={})
        response = logged_in(viewer).get(self.DASHBOARD)
        assert response.status_code == 200
        today = response.context["days"][-1]
        assert today["is_today"] and today["total"] == 4
        assert {segment["label"]: segment["count"] for segment in today["segments"]} == {
            "failed": 1, "invalid": 2, "rejected": 1}
        reasons = response.context["reasons"]
        assert reasons[0]["count"] == 2 and "does not exist" in reasons[0]["reason"]
        assert any(row["detail"] == "LMS said no" for row in response.context["course_failures"])
        sources = {row["slug"]: row for row in response.context["sources"]}
        assert sources["shop"]["last_success"] is None and sources["legacy"]["configured"]
        segment = next(s for s in today["segments"] if s["label"] == "invalid")
        listed = logged_in(viewer).get(segment["url"])
        assert listed.status_code == 200 and listed.context["cl"].result_count == 2
        assert "Dashboard" in logged_in(viewer).get(CHANGELIST).content.decode()

    def test_a_success_is_the_sources_last(self, viewer, courses, ada):
        post_webhook(Client(), {"email": "ada@example.com", "courseIds": [DEMO_COURSE]})
        sources = {row["slug"]: row for row in logged_in(viewer).get(self.DASHBOARD).context["sources"]}
        assert sources["shop"]["last_success"] == WebhookDelivery.objects.get().received_at

    def test_staff_without_the_view_permission_are_refused(self, django_user_model):
        staff = django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
        assert logged_in(staff).get(self.DASHBOARD).status_code == 403
