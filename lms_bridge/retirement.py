"""
Retirement: when Open edX retires a learner, lms_bridge forgets them too.

The LMS's retirement pipeline sends ``USER_RETIRE_LMS_MISC`` (its signal for
plugins, from the ``RETIRING_LMS_MISC`` step, before the account's email is
replaced) with the user; the plugin system connects ``retire_learner`` to it
(``apps.py``'s ``signals_config``). Every delivery and operation holding the
learner's email loses it and, in the payload, the names sent with it.
Matching ignores letter case only (see ``backends.base.same_email``).
"""
import json
import logging
import re

from django.db import transaction

from . import strict_json
from .backends.base import same_email
from .models import EnrollmentOperation, WebhookDelivery

log = logging.getLogger(__name__)

RETIRED_EMAIL = "retired@retired.invalid"
# Payload keys that hold who the learner is, next to their email (lms-bridge and bulk payloads).
PERSONAL_KEYS = ("email", "username", "name", "family", "first_name", "last_name", "full_name")


def retire_learner(sender, user=None, **kwargs):  # pylint: disable=unused-argument
    """
    Receiver of the platform's ``USER_RETIRE_LMS_MISC``: scrub ``user``'s email and names from the audit trail.
    """
    email = getattr(user, "email", None)
    if email:
        count = scrub_learner(email)
        log.info("lms_bridge retirement: scrubbed %s deliveries of user %s", count, getattr(user, "id", None))


def _scrub_value(value, email):
    """The parsed payload with the learner's email (and the names beside it) replaced."""
    if isinstance(value, dict):
        if any(same_email(item, email) for item in value.values()):
            return {key: (RETIRED_EMAIL if same_email(item, email) else "" if key in PERSONAL_KEYS else
                          _scrub_value(item, email)) for key, item in value.items()}
        return {key: _scrub_value(item, email) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_value(item, email) for item in value]
    return RETIRED_EMAIL if same_email(value, email) else value


def scrub_body(body, email):
    """A stored body with the learner's identity removed (JSON is rewritten; anything else has the email cut)."""
    try:
        return json.dumps(_scrub_value(strict_json.loads(body), email))
    except (strict_json.StrictJSONError, RecursionError):
        return re.sub(re.escape(email), RETIRED_EMAIL, body, flags=re.IGNORECASE)


def scrub_learner(email):
    """
    Remove ``email`` (and the names sent with it) from every delivery and operation.

    Returns:
        int: how many deliveries were scrubbed.
    """
    operations = [op for op in EnrollmentOperation.objects.filter(email__iexact=email).only("id", "email",
                                                                                              "delivery_id")
                  if same_email(op.email, email)]
    delivery_ids = {op.delivery_id for op in operations}
    # Deliveries refused before any operation (invalid, rejected) hold the email only in their body.
    delivery_ids |= set(WebhookDelivery.objects.filter(body__icontains=email).values_list("id", flat=True))
    scrubbed = 0
    with transaction.atomic():
        EnrollmentOperation.objects.filter(id__in=[op.id for op in operations]).update(email=RETIRED_EMAIL)
        for delivery in WebhookDelivery.objects.filter(id__in=delivery_ids).only("id", "body"):
            body = scrub_body(delivery.body, email)
            if body != delivery.body:
                WebhookDelivery.objects.filter(id=delivery.id).update(body=body)
                scrubbed += 1
    return scrubbed
