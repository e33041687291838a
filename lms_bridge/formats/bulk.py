"""
The ``bulk`` format: a cohort import, thousands of learner-course pairs in one delivery.

Every learner in every course::

    {"learners": [{"email": "ada@example.com", "username": "ada", "name": "Ada", "family": "Lovelace"}],
     "courseIds": ["course-v1:Org+Course+Run"], "action": "enroll", "mode": "audit"}

or explicit pairs, each with its own action and mode::

    {"enrollments": [{"email": "ada@example.com", "courseId": "course-v1:Org+Course+Run",
                      "action": "unenroll", "mode": null}]}

At most ``MAX_PAIRS`` pairs (default 10,000); an error names the field by its
path (``learners[3].email``). Its default ``MODE`` is ``auto``.
"""
from rest_framework import serializers

from lms_bridge.actions import ACTIONS, ENROLL
from lms_bridge.serializers import (
    MAX_COURSE_ID_CHARS,
    MODE_REGEX,
    CourseKeyField,
    CourseKeyListField,
    StrictCharField,
    StrictEmailField,
    StrictRegexField,
    validate,
)

from .base import EnrollmentRequest, InvalidPayloadError, PayloadFormat

MODE_ERROR = {"invalid": "Must be a course mode slug such as 'audit' or 'verified'."}


def _mode_field():
    return StrictRegexField(MODE_REGEX, required=False, allow_null=True, max_length=100, error_messages=MODE_ERROR)


class LearnerSerializer(serializers.Serializer):  # pylint: disable=abstract-method
    email = StrictEmailField(max_length=254)
    username = StrictCharField(required=False, allow_blank=True, max_length=150)
    name = StrictCharField(required=False, allow_blank=True, max_length=255)
    family = StrictCharField(required=False, allow_blank=True, max_length=255)


class PairSerializer(serializers.Serializer):  # pylint: disable=abstract-method
    email = StrictEmailField(max_length=254)
    courseId = CourseKeyField(max_length=MAX_COURSE_ID_CHARS)  # noqa: N815
    action = serializers.ChoiceField(choices=ACTIONS, default=ENROLL)
    mode = _mode_field()


class CohortSerializer(serializers.Serializer):  # pylint: disable=abstract-method
    learners = serializers.ListField(child=LearnerSerializer(), allow_empty=False)
    courseIds = CourseKeyListField(allow_empty=False)  # noqa: N815
    action = serializers.ChoiceField(choices=ACTIONS, default=ENROLL)
    mode = _mode_field()


class PairsSerializer(serializers.Serializer):  # pylint: disable=abstract-method
    enrollments = serializers.ListField(child=PairSerializer(), allow_empty=False)


def _first_error(errors, path=""):
    """(field path, message) of the first error in DRF's nested errors."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            if value:
                if isinstance(key, int):
                    return _first_error(value, f"{path}[{key}]")
                return _first_error(value, f"{path}.{key}" if path else key)
    if isinstance(errors, list) and errors:
        for position, value in enumerate(errors):
            if value:
                if isinstance(value, (dict, list)) and not isinstance(value, str):
                    nested = _first_error(value, f"{path}[{position}]" if isinstance(value, dict) else path)
                    if nested:
                        return nested
                else:
                    return path, str(value)
    if isinstance(errors, str):
        return path, errors
    return None


class BulkFormat(PayloadFormat):
    """Many learners in many courses."""

    name = "bulk"
    default_mode = "auto"
    # An explicit pair with long names: comfortably above what senders send.
    bytes_per_pair = 400

    def parse(self, body, headers):
        payload = self.load_json_object(body)
        shapes = [key for key in ("learners", "enrollments") if key in payload]
        if len(shapes) != 1:
            raise InvalidPayloadError("The body must have either 'learners' (with 'courseIds') or 'enrollments'")
        if shapes == ["learners"]:
            unknown = set(payload) - {"learners", "courseIds", "action", "mode"}
            serializer_class = CohortSerializer
        else:
            unknown = set(payload) - {"enrollments"}
            serializer_class = PairsSerializer
        if unknown:
            raise InvalidPayloadError(f"Unknown field(s): {', '.join(sorted(unknown))}")
        # Refused before the (costly) validation of every element.
        size = (len(payload["learners"]) * len(payload.get("courseIds") or [])
                if shapes == ["learners"] and isinstance(payload.get("learners"), list)
                and isinstance(payload.get("courseIds"), list)
                else len(payload["enrollments"]) if isinstance(payload.get("enrollments"), list) else 0)
        self.check_size(size)
        try:
            data = validate(serializer_class, payload)
        except serializers.ValidationError as exc:
            found = _first_error(exc.detail) or ("", "Invalid body")
            raise InvalidPayloadError(f"{found[0]}: {found[1]}" if found[0] else found[1], errors=exc.detail) from None
        if shapes == ["learners"]:
            requests = []
            for learner in data["learners"]:
                requests += EnrollmentRequest.for_courses(
                    data["courseIds"], email=learner["email"].strip(), action=data["action"],
                    mode=data.get("mode") or None, username=learner.get("username", ""),
                    first_name=learner.get("name", ""), last_name=learner.get("family", ""),
                )
        else:
            requests = [
                EnrollmentRequest(email=pair["email"].strip(), course_key=pair["courseId"], action=pair["action"],
                                  mode=pair.get("mode") or None)
                for pair in data["enrollments"]
            ]
        return self.check_pairs(requests)
