"""
Tests of the Django admin: the audit and repair console (read-only lists,
filters, search, the operations inline, permissions, "reprocess").
"""
import pytest
from django.contrib.auth.models import Permission
from django.test import Client, override_settings

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
    """A staff member with the view and change permissions of lms_bridge's models."""
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

    def test_view_only_staff_cannot_reprocess(self, viewer, failed_delivery):
        """Expected behavior: without the change permission the action is not available."""
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
