"""
Retirement: the platform's retirement signal scrubs the learner from lms_bridge's audit trail, wired the
way the LMS wires plugins (edx-django-utils' signals_config, connected when the apps are ready).
"""
import json

import pytest
from common.djangoapps.student.models import CourseEnrollmentAllowed
from openedx.core.djangoapps.user_api.accounts.signals import USER_RETIRE_LMS_MISC
from openedx.core.djangoapps.user_api.models import UserRetirementStatus

from lms_bridge.models import EnrollmentOperation, WebhookDelivery

from .conftest import BRIDGE_COURSE, DEMO_COURSE
from .signing import post_webhook

pytestmark = pytest.mark.django_db


def test_retiring_a_learner_scrubs_their_deliveries(client, courses, ada):
    """
    Expected behavior: after USER_RETIRE_LMS_MISC for ada, no delivery or
    operation holds her email or the names sent with it, invalid and refused
    deliveries included; another learner's records are untouched.
    """
    mine = {"email": "Ada@Example.com", "name": "Augusta", "family": "King", "username": "ada",
            "courseIds": [DEMO_COURSE]}
    assert post_webhook(client, mine).status_code == 200
    assert post_webhook(client, {**mine, "courseIds": ["course-v1:Nope+X+1"]}).status_code == 400
    assert post_webhook(client, mine, headers={}).status_code == 401
    other = {"email": "grace@example.com", "name": "Grace", "courseIds": [BRIDGE_COURSE]}
    assert post_webhook(client, other).status_code == 200

    USER_RETIRE_LMS_MISC.send(sender=None, user=ada)

    for delivery in WebhookDelivery.objects.all():
        for secret in ("ada@example.com", "Augusta", "King"):
            assert secret.lower() not in delivery.body.lower(), delivery.body
    assert not EnrollmentOperation.objects.filter(email__iexact="ada@example.com").exists()
    scrubbed = WebhookDelivery.objects.filter(status="processed").order_by("id").first()
    assert json.loads(scrubbed.body)["courseIds"] == [DEMO_COURSE]
    assert EnrollmentOperation.objects.filter(email="grace@example.com").count() == 1
    assert WebhookDelivery.objects.filter(body__contains="Grace").count() == 1


def test_a_retirement_in_progress_refuses_new_allowances(client, courses, grace):
    """Expected behavior: a learner who asked to be retired (email not hashed yet) gets no new allowance."""
    UserRetirementStatus.objects.create(user=grace, original_username="grace", original_email="grace@example.com",
                                        retired_username="retired_user_1", retired_email="retired_1@retired.invalid")
    response = post_webhook(client, {"email": "GRACE@example.com", "courseIds": [DEMO_COURSE]})
    result = response.json()["results"][0]
    assert result["outcome"] == "refused" and "being retired" in result["detail"]
    assert not CourseEnrollmentAllowed.objects.exists()
