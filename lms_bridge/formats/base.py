"""
The contract of a payload format.

A format has one job: turn a verified, recorded body (and the headers it
asked to keep) into a list of normalized ``EnrollmentRequest``, or say the
delivery needs no action (``Ignored``), or that it cannot be processed as sent
(``InvalidPayloadError``, with a message naming the field). It knows nothing of
HTTP status codes, backends or the database: ``processing`` does the rest, and
``responses`` maps the outcome to an answer. The contract test suite
(``tests/formats/contract.py``) holds every format to this.
"""
from dataclasses import dataclass, field

from lms_bridge import strict_json
from lms_bridge.actions import ACTIONS, ENROLL
from lms_bridge.serializers import course_id_of, course_ids_of

DEFAULT_MAX_PAIRS = 10_000


@dataclass(frozen=True, init=False)
class EnrollmentRequest:
    """
    One (learner, course) pair a delivery asks for.

    ``email`` identifies the learner; the names are informational. Immutable,
    compared by value (``course_id`` aside: it follows from ``course_key``).
    """

    email: str
    course_key: object  # opaque_keys CourseKey
    action: str = ENROLL
    mode: str | None = None
    username: str = ""
    first_name: str = ""
    last_name: str = ""

    #: the course key as text, worked out once (every pair's checks, row and answer read it)
    course_id: str = field(init=False, repr=False, compare=False)

    # The fields are set in one go: a frozen dataclass's generated __init__ sets each
    # through object.__setattr__, and building the requests was then a large part
    # of what acknowledging a delivery of many courses cost.
    def __init__(self, email, course_key, action=ENROLL, mode=None, username="", first_name="", last_name=""):
        self.__dict__.update(email=email, course_key=course_key, action=action, mode=mode, username=username,
                             first_name=first_name, last_name=last_name, course_id=course_id_of(course_key))

    @classmethod
    def for_courses(cls, course_keys, email, **details):
        """
        One request per course of ``course_keys`` for one learner, in order (what
        ``[EnrollmentRequest(email, key, **details) for key in course_keys]`` gives,
        built faster: the learner's fields are worked out once).
        """
        learner = vars(cls(email, None, **details))
        course_keys = list(course_keys)  # any iterable: it is read twice
        new = object.__new__
        requests = []
        for course_key, course_id in zip(course_keys, course_ids_of(course_keys), strict=True):
            request = new(cls)
            attributes = request.__dict__
            attributes.update(learner)
            attributes["course_key"] = course_key
            attributes["course_id"] = course_id
            requests.append(request)
        return requests


class InvalidPayloadError(Exception):
    """
    The body cannot be processed as sent (the sender must change it).

    Arguments:
        message (str): one line for the sender, naming the field.
        errors (dict | None): the errors by field, when there are several.
    """

    def __init__(self, message, errors=None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class Ignored(Exception):  # noqa: N818 (an outcome, not an error)
    """The delivery needs no action (a topic the format does not act on); it is answered 200."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class PayloadFormat:
    """
    Base class of payload formats.

    Class attributes:
        name (str): the short name used in ``FORMAT``.
        default_mode (str): the source's ``MODE`` when it sets none
            (``"auto"``, unless its senders expect the processed answer).
        kept_headers (tuple[str]): request headers recorded with the delivery
            and passed to ``parse`` (a shop's topic header, say).
        bytes_per_pair (int): what one pair may take in a body, to size the
            default body cap (``max_body_bytes``); 0 keeps the global cap.
    """

    name = ""
    default_mode = "auto"
    kept_headers = ()
    bytes_per_pair = 0

    def __init__(self, max_pairs=DEFAULT_MAX_PAIRS):
        self.max_pairs = max_pairs

    def max_body_bytes(self, global_cap):
        """The body cap of a source of this format that sets none."""
        if not self.bytes_per_pair:
            return global_cap
        return max(global_cap, self.max_pairs * self.bytes_per_pair + 64 * 1024)

    def parse(self, body, headers):
        """
        Arguments:
            body (str): the recorded body (valid UTF-8, verified).
            headers (dict): the kept headers, by lower-case name.

        Returns:
            list[EnrollmentRequest]: at least one, at most ``max_pairs``,
            no (email ignoring case, course) pair twice.

        Raises:
            InvalidPayloadError: the body cannot be processed as sent.
            Ignored: the delivery needs no action.
        """
        raise NotImplementedError

    # Helpers for subclasses.

    @staticmethod
    def load_json_object(body):
        """The body as a JSON object, strictly parsed (duplicate keys, NaN... refused)."""
        try:
            payload = strict_json.loads(body)
        except strict_json.StrictJSONError as exc:
            raise InvalidPayloadError(str(exc)) from None
        if not isinstance(payload, dict):
            raise InvalidPayloadError("The body must be a JSON object")
        return payload

    def check_size(self, count):
        """Refuse a delivery of more than ``max_pairs`` pairs (call it before validating each one)."""
        if count > self.max_pairs:
            raise InvalidPayloadError(
                f"The delivery asks for {count} learner-course pairs; this source takes at most "
                f"{self.max_pairs} per delivery (its MAX_PAIRS): split it",
            )

    def check_pairs(self, requests):
        """Refuse an empty, oversized or ambiguous list of requests; return it."""
        if not requests:
            raise InvalidPayloadError("The delivery asks for no enrollment")
        self.check_size(len(requests))
        # Set operations over the whole list (the usual case: nothing wrong); the loops
        # below only name the first offender.
        if not {request.action for request in requests}.issubset(ACTIONS):
            action = next(request.action for request in requests if request.action not in ACTIONS)
            raise InvalidPayloadError(f"Unknown action {action!r}")
        if len({(request.email.lower(), request.course_id.lower()) for request in requests}) < len(requests):
            seen = set()
            for request in requests:
                key = (request.email.lower(), request.course_id.lower())
                if key in seen:
                    raise InvalidPayloadError(f"The pair ({request.email}, {request.course_id}) is listed twice")
                seen.add(key)
        return requests
