"""
The ``lms-bridge`` format: one learner, up to 100 courses (lernito-openedx's payload, with ``action`` and ``mode``)::

    {"email": "learner@example.com", "username": "learner", "name": "First",
     "family": "Last", "courseIds": ["course-v1:edX+DemoX+Demo_Course"],
     "action": "enroll", "mode": "verified"}

Its senders expect the processed answer, so its default ``MODE`` is ``sync``.
"""
from rest_framework.exceptions import ValidationError

from lms_bridge.serializers import WebhookPayloadSerializer, first_error_message, validate

from .base import EnrollmentRequest, InvalidPayloadError, PayloadFormat


class LmsBridgeFormat(PayloadFormat):
    """One learner in one or more courses."""

    name = "lms-bridge"
    default_mode = "sync"

    def parse(self, body, headers):
        try:
            data = validate(WebhookPayloadSerializer, self.load_json_object(body))
        except ValidationError as exc:
            errors = exc.detail
            # lernito's answers: one line for a bad course id, else the errors by field.
            raise InvalidPayloadError(first_error_message(errors) or errors, errors=errors) from None
        return self.check_pairs(EnrollmentRequest.for_courses(
            data["courseIds"], email=data["email"], action=data["action"], mode=data.get("mode") or None,
            username=data.get("username", ""), first_name=data.get("name", ""), last_name=data.get("family", ""),
        ))
