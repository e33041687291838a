"""
Validation of webhook payloads.

The payload is the lernito-openedx one, extended with ``action`` and ``mode``::

    {"email": "learner@example.com", "username": "learner", "name": "First",
     "family": "Last", "courseIds": ["course-v1:edX+DemoX+Demo_Course"],
     "action": "enroll", "mode": "verified"}

Fields are strict about types: DRF's CharField would turn ``123`` or ``true``
into a string, which would hide sender bugs.
"""
import functools

from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from .actions import ENROLL, UNENROLL

MAX_COURSES = 100
MODE_REGEX = r"^[A-Za-z0-9_-]{1,100}$"
# Distinct course ids whose parsed keys are kept: a platform has far fewer runs than this.
PARSED_KEYS_KEPT = 4096


@functools.cache
def shared_serializer(serializer_class):
    """
    One unbound instance of ``serializer_class``, for ``validate``: its fields are
    built once per process, not deep-copied for every payload.
    """
    return serializer_class()


def validate(serializer_class, data):
    """
    The validated data of ``data``, or ``ValidationError`` whose ``detail`` holds
    the errors by field (what ``is_valid()`` would have put in ``errors``).

    One shared instance validates every payload, the way DRF's ``ListSerializer``
    reuses its child for every item: ``run_validation`` keeps nothing on the
    instance, so it is safe across requests and threads. The serializers given
    here must not read ``initial_data`` or a context.
    """
    return shared_serializer(serializer_class).run_validation(data)


# Course ids as text, in a key's field (what the database column holds).
MAX_COURSE_ID_CHARS = 255
# Parsed course ids (within MAX_COURSE_ID_CHARS): text -> key, and each of those
# keys' own text, by the key's identity.
_parsed_keys = {}
_key_texts = {}


def parse_course_key(text):
    """
    The course run key ``text`` names; ``InvalidKeyError`` (not kept) if none.
    Keys are immutable, and a platform's senders name the same few runs over and
    over: parsed once, each is reused (at most ``PARSED_KEYS_KEPT`` of them).
    """
    key = _parsed_keys.get(text)
    if key is not None:
        return key
    key = CourseKey.from_string(text)
    # Library keys are CourseKeys too, but nobody enrolls in a library.
    if not isinstance(key, CourseLocator):
        raise InvalidKeyError(CourseLocator, text)
    if len(text) > MAX_COURSE_ID_CHARS:
        return key  # longer than any field takes: not remembered
    if len(_parsed_keys) >= PARSED_KEYS_KEPT:
        _parsed_keys.clear()
        _key_texts.clear()
    # The entry holds the key: no other object can have its id while the entry lasts.
    _key_texts[id(key)] = (key, str(key))
    _parsed_keys[text] = key
    return key


def course_ids_of(keys):
    """
    ``[str(key) for key in keys]``, the course ids, remembered for every key
    ``parse_course_key`` gave: an opaque key builds its text anew each time (a
    join of its fields), and every pair of a delivery needs its course's id.
    """
    texts = _key_texts
    return [known[1] if (known := texts.get(id(key))) is not None and known[0] is key else str(key)
            for key in keys]


def course_id_of(key):
    """``str(key)``, as ``course_ids_of`` gives it."""
    return course_ids_of((key,))[0]


class StrictStringMixin:
    """Refuse non-string JSON values instead of coercing them to strings."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    """A CharField that only takes JSON strings."""


class StrictEmailField(StrictStringMixin, serializers.EmailField):
    """An EmailField that only takes JSON strings."""


class StrictRegexField(StrictStringMixin, serializers.RegexField):
    """A RegexField that only takes JSON strings."""


class CourseKeyField(StrictCharField):
    """
    A course run key (``course-v1:Org+Course+Run``), parsed with edx-opaque-keys.

    The length limit applies to the text the sender sent; the key is parsed once
    that text passed it (DRF would otherwise run the validators on the parsed key,
    turning it back into text for each of them).
    """

    default_error_messages = {"invalid_key": "Invalid course key format: {value}"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # A key can hold no surrogate (opaque-keys allows word characters and -~.: only),
        # so the text needs no scan for them: a key that had one is an invalid key.
        self.validators = [validator for validator in self.validators
                           if not isinstance(validator, ProhibitSurrogateCharactersValidator)]

    def run_validation(self, data=empty):
        text = super().run_validation(data)
        if text is None:
            return None
        try:
            return parse_course_key(text)
        except InvalidKeyError:
            self.fail("invalid_key", value=text)
        return None  # not reached: fail() raises

    def to_representation(self, value):
        return str(value)


class CourseKeyListField(serializers.ListField):
    """
    A list of course run keys. A list of ids already parsed, as written (the usual
    case: senders name the same few runs), is checked by lookup; any other goes
    through DRF's ListField, so that every error is reported exactly as DRF reports
    it (by position).

    Arguments:
        unique (bool): refuse a course listed twice ("Duplicate course id"),
            after the list's own checks (its length).
    """

    default_error_messages = {"duplicate": "Duplicate course id: {value}"}

    def __init__(self, unique=False, **kwargs):
        super().__init__(child=CourseKeyField(max_length=MAX_COURSE_ID_CHARS), **kwargs)
        self.unique = unique

    def to_internal_value(self, data):
        if isinstance(data, list) and data:
            try:
                return [_parsed_keys[item] for item in data]
            except (KeyError, TypeError):  # not a known id as written (or not text): checked in full
                pass
        return super().to_internal_value(data)

    def run_validation(self, data=empty):
        keys = super().run_validation(data)
        if self.unique and keys:
            texts = course_ids_of(keys)  # the courses' own ids, whatever the sender wrote
            if len(set(texts)) < len(texts):
                seen = set()
                for text in texts:
                    if text in seen:
                        self.fail("duplicate", value=text)
                    seen.add(text)
        return keys


class WebhookPayloadSerializer(serializers.Serializer):  # pylint: disable=abstract-method
    """The body of an enrollment webhook."""

    email = StrictEmailField(max_length=254)
    username = StrictCharField(required=False, allow_blank=True, max_length=150)
    name = StrictCharField(required=False, allow_blank=True, max_length=255)
    family = StrictCharField(required=False, allow_blank=True, max_length=255)
    courseIds = CourseKeyListField(  # noqa: N815 (the lernito field name)
        unique=True,
        min_length=1,
        max_length=MAX_COURSES,
        allow_empty=False,
    )
    action = serializers.ChoiceField(choices=(ENROLL, UNENROLL), default=ENROLL)
    mode = StrictRegexField(
        MODE_REGEX, required=False, allow_null=True, max_length=100,
        error_messages={"invalid": "Must be a course mode slug such as 'audit' or 'verified'."},
    )

    def validate_email(self, value):
        """Trim surrounding white space; keep the case (matching ignores it)."""
        return value.strip()


def first_error_message(errors):
    """
    Return a one-line summary of serializer errors when they concern only the
    course ids (the lernito messages, such as "Invalid course key format: x"),
    else None so the caller returns the errors by field.
    """
    if set(errors) != {"courseIds"}:
        return None
    detail = errors["courseIds"]
    while isinstance(detail, (list, dict)) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    if not detail:
        return None
    text = str(detail)
    # lernito's own messages name the course; DRF's generic ones get the field's name.
    return text if "course" in text.lower() else f"courseIds: {text}"
