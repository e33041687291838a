"""
The contract every enrollment backend fulfils.

A backend is configured by one entry of ``LMS_BRIDGE_BACKENDS`` and answers
for the courses its ``SELECTOR_REGEX`` matches. Every backend must be
idempotent: asking twice for the same state changes nothing the second time,
and the outcome says so (``already_enrolled``, ``already_allowed``...).
The shared contract test suite (``tests/backends/contract.py``) holds every
backend to this.
"""
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property

from lms_bridge.actions import ENROLL, UNENROLL  # noqa: F401  pylint: disable=unused-import
from lms_bridge.models import Outcome


class BackendError(Exception):
    """
    A permanent failure for one course: retrying the same request will not help.

    Arguments:
        detail (str): what the sender is told (never an internal URL or secret).
        internal (str): the full story for support staff (the audit row's
            ``error``); defaults to ``detail``.
    """

    def __init__(self, detail, internal=None):
        super().__init__(internal or detail)
        self.detail = detail


class TransientBackendError(BackendError):
    """
    A failure that a later retry may not meet (LMS down, timeout, lock wait...).

    Arguments:
        retry_after (int | None): seconds the LMS asked to wait (its ``Retry-After``), passed on to the sender.
    """

    def __init__(self, detail, internal=None, retry_after=None):
        super().__init__(detail, internal)
        self.retry_after = retry_after


class BackendConfigurationError(TransientBackendError):
    """
    The backend is misconfigured (missing permission, bad credentials...): an
    operator must act, and the delivery will succeed once they have, so it is
    transient for the sender (503) and an error in the operator's log.
    """

    def __init__(self, internal):
        super().__init__("The LMS that handles this course is misconfigured; support has been alerted. Retry later.",
                         internal)


class AmbiguousAccountError(BackendError):
    """Several accounts have the delivery's email (differing only in case): a person must choose."""


LOOKALIKE_ACCOUNT = (
    "An account exists whose email differs from this one by more than letter case (accents or letter width); "
    "nothing was done, so as not to act on the wrong learner"
)
LOOKALIKE_ALLOWANCE = (
    "An enrollment allowance exists for an email that differs from this one by more than letter case "
    "(accents or letter width), and the LMS's database cannot hold both; nothing was done"
)
SEVERAL_ACCOUNTS = "Several accounts match this email; enroll the learner by hand"
NO_PROFILE = ("This learner's account has no profile (an incomplete account), so Open edX cannot enroll it; "
              "support must repair the account")
NOT_FORCED = "this source may not enroll past that (its FORCE_ENROLLMENT is off)"


def closed_reason(course_key, invitation_only, enrollment_start, enrollment_end, now):
    """
    Why the enrollment policy refuses a new learner in a course, or None.

    The one policy both Open edX backends apply when the source does not force
    enrollments: an invite-only course, or one outside its enrollment window.
    (A full course is the platform's own answer, see ``full_detail``.)
    """
    if invitation_only:
        return f"Course {course_key} is invitation-only; {NOT_FORCED}"
    if enrollment_start is not None and now < enrollment_start:
        return f"Enrollment in course {course_key} has not opened yet; {NOT_FORCED}"
    if enrollment_end is not None and now > enrollment_end:
        return f"Enrollment in course {course_key} has closed; {NOT_FORCED}"
    return None


def full_detail(course_key):
    """The refusal of a course at its maximum enrollment."""
    return f"Course {course_key} is full; {NOT_FORCED}"


def no_default_mode_detail(course_key, offered):
    """The refusal of a delivery with no mode for a course whose modes hold no default (audit or honor)."""
    return (f"Course {course_key} offers no default mode (audit or honor); the delivery must name one of: "
            f"{', '.join(sorted(offered)) or 'none'}")


def same_email(first, second):
    """
    Whether two emails are the same learner: equal, ignoring letter case only.

    MySQL's collations (what Open edX runs) also ignore accents and letter
    width, so a database lookup may return ``ada@example.com`` for
    ``ada@exämple.com``: every lookup is checked with this afterwards.
    """
    return isinstance(first, str) and isinstance(second, str) and first.lower() == second.lower()


def split_by_email(rows, email, email_of):
    """
    Split what a (collation-blind) lookup returned into this email's rows and lookalikes' rows.

    Returns:
        tuple[list, list]: (rows whose email is ``email`` ignoring case, the others).
    """
    same = [row for row in rows if same_email(email_of(row), email)]
    return same, [row for row in rows if not same_email(email_of(row), email)]


def pick_account(accounts, email, email_of):
    """
    Choose the account of ``email`` among what a (collation-blind) lookup returned.

    Arguments:
        accounts (list): the candidates.
        email (str): the delivery's email.
        email_of (callable): an account -> its email.

    Returns:
        tuple: (the account or None, whether a lookalike account was seen).

    Raises:
        AmbiguousAccountError: several accounts have this email (differing
            only in case) and none matches exactly.
    """
    same, lookalikes = split_by_email(accounts, email, email_of)
    lookalike = bool(lookalikes)
    if len(same) <= 1:
        return (same[0] if same else None), lookalike
    exact = [account for account in same if email_of(account) == email]
    if len(exact) == 1:
        return exact[0], lookalike
    raise AmbiguousAccountError(SEVERAL_ACCOUNTS)


class DeliveryMemo:
    """
    What a backend read, reused for a short while: for one delivery (``settled``
    reads in bulk what ``set_enrollment`` would read again pair by pair; keys start
    with the delivery's id), or for the acknowledgements (``found_recently``).
    Entries expire after ``seconds`` and are purged by ``purge``; at most ``limit``
    are kept.
    """

    MISSING = object()

    def __init__(self, seconds=30, limit=100_000):
        self.seconds, self.limit = seconds, limit
        self._entries = {}

    def put(self, key, value):
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.seconds, value)

    def get(self, key, pop=False):
        """The value kept for ``key``, or ``DeliveryMemo.MISSING``."""
        entry = self._entries.pop(key, None) if pop else self._entries.get(key)
        return entry[1] if entry and entry[0] >= time.monotonic() else self.MISSING

    def found(self, keys):
        """The set of ``keys`` kept, unexpired, with the value True."""
        now, entries = time.monotonic(), self._entries
        return {key for key in keys if (entry := entries.get(key)) is not None and entry[0] >= now and entry[1] is True}

    def purge(self):
        """Forget the expired entries."""
        now = time.monotonic()
        for key in [key for key, (expiry, _) in list(self._entries.items()) if expiry < now]:
            self._entries.pop(key, None)


@dataclass(frozen=True)
class BackendConfig:
    """One entry of ``LMS_BRIDGE_BACKENDS``."""

    backend: str
    base_url: str = ""
    selector_regex: str = ".*"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Learner:
    """
    The learner a delivery is about. The email identifies them; the rest is
    informational (a backend that creates accounts may use it).
    """

    email: str
    username: str = ""
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class OperationContext:
    """
    Where an operation comes from (for the LMS's own audit records), and the source's policy.

    Attributes:
        force_enrollment (bool): the source's ``FORCE_ENROLLMENT``: enroll
            even into a course whose enrollment is closed, that is full or
            invite-only (otherwise such a pair is ``refused``).
    """

    source: str
    delivery: str
    event_id: str = ""
    force_enrollment: bool = False

    @property
    def reason(self):
        """The text Open edX shows course staff as the reason of a manual enrollment change."""
        text = f"lms_bridge webhook from source '{self.source}', delivery {self.delivery}"
        if self.event_id:
            text += f" (event {self.event_id})"
        return text


@dataclass(frozen=True)
class EnrollmentState:
    """
    A learner's current standing in one course.

    Attributes:
        account_exists (bool): an account has this email.
        account_active (bool): that account is active.
        is_active (bool | None): the enrollment is active; None when there is none.
        mode (str | None): the enrollment's mode; None when there is none.
        allowed (bool): an enrollment-allowed record exists for the email.
    """

    account_exists: bool = False
    account_active: bool = False
    is_active: bool | None = None
    mode: str | None = None
    allowed: bool = False


@dataclass(frozen=True)
class EnrollmentResult:
    """The typed outcome of ``set_enrollment``."""

    outcome: Outcome
    detail: str = ""
    mode: str | None = None


def allowance_detail(mode=None):
    """
    What an ``allowed`` outcome tells the sender: Open edX enrolls on
    activation, in the course's default mode (an allowance has no mode).
    """
    detail = "No active account yet: Open edX will enroll the learner when the account is activated"
    if mode:
        detail += (" (in the course's default mode: send the delivery again once the account is active"
                   f" to get mode {mode!r})")
    return detail


class EnrollmentBackend:
    """
    Base class of enrollment backends.

    Subclasses implement ``course_exists``, ``offers_mode``, ``get_enrollment``
    and ``set_enrollment``. They raise ``TransientBackendError`` for failures a
    retry may cure and ``BackendError`` for the others; any other exception is
    treated as a permanent failure of that one course.
    """

    #: Its effects are writes to this database (the in-process backend): processing may put many
    #: pairs in one transaction, a savepoint each. False for a backend that makes HTTP calls: no
    #: transaction is ever held open across them.
    transactional = False

    def __init__(self, configuration):
        """
        Arguments:
            configuration (BackendConfig): the backend's settings entry.
        """
        self.configuration = configuration

    @cached_property
    def found_recently(self):
        """
        Course ids and ``(course id, mode)`` pairs this backend found to
        exist in the last minute, in this process: the async acknowledgement asks
        only about the others. Never what does not exist.
        """
        return DeliveryMemo(seconds=60, limit=20_000)

    @property
    def name(self):
        """A label for the audit trail: the dotted path, plus the base URL when there is one."""
        if self.configuration.base_url:
            return f"{self.configuration.backend} ({self.configuration.base_url})"
        return self.configuration.backend

    @classmethod
    def check_configuration(cls, configuration):  # pylint: disable=unused-argument
        """Return a list of configuration problems, for the system checks (none by default)."""
        return []

    def check(self):
        """
        Prove the backend works: authenticate and make one cheap read (the
        operators' smoke test after a deploy).

        Returns:
            str | None: what the operator should know (shown beside "OK").

        Raises:
            BackendError: what is wrong.
        """
        self.existing_courses([])

    def course_exists(self, course_key):
        """
        Arguments:
            course_key (CourseKey): the course.

        Returns:
            bool: the course exists in this LMS.
        """
        raise NotImplementedError

    def existing_courses(self, course_keys):
        """
        The subset of ``course_keys`` that exist, asked once per delivery.

        The default asks ``course_exists`` for each; backends override it to
        answer for all the courses at once.

        Returns:
            set[CourseKey]
        """
        return {course_key for course_key in course_keys if self.course_exists(course_key)}

    def offers_mode(self, course_key, mode):
        """
        Returns:
            bool: learners can be enrolled in ``course_key`` in ``mode``.
        """
        raise NotImplementedError

    def supported_modes(self, pairs):
        """
        Which (course, mode) pairs of a delivery can be enrolled in, asked once per delivery.

        The default asks ``offers_mode`` for each; backends override it to
        answer for all of them at once.

        Arguments:
            pairs (set[tuple[CourseKey, str]]): (course, mode).

        Returns:
            set[tuple[CourseKey, str]]: the supported ones.
        """
        return {(course_key, mode) for course_key, mode in pairs if self.offers_mode(course_key, mode)}

    def settled(self, pairs, context=None):
        """
        Read, in bulk and without locks, which pairs are already in the state they ask for.

        For each pair: an ``EnrollmentResult`` (``already_enrolled``,
        ``already_allowed`` or ``not_enrolled``) when ``set_enrollment`` would
        change nothing and answer exactly that; None when it has work to do
        (or when in doubt: a lookalike email, several accounts...). Those are
        recorded with no transaction of their own; only the others go to
        ``set_enrollment``. The default knows nothing (every request is done).

        Arguments:
            pairs (list[EnrollmentRequest]): the delivery's pairs for this backend.
            context (OperationContext): where they come from.

        Returns:
            list[EnrollmentResult | None]: aligned with ``pairs``.
        """
        return [None] * len(pairs)

    def batch(self, pairs, context=None):  # pylint: disable=unused-argument
        """
        A context manager around the ``set_enrollment`` calls of one batch of pairs.

        Processing enters it before changing the batch's pairs and leaves it
        after the last one (for a ``transactional`` backend, inside the batch's
        transaction). A backend may prepare the batch in bulk there; the
        in-process one locks the batch's accounts in one statement. The pairs'
        changes and outcomes are the same with or without it. The default does
        nothing.

        Arguments:
            pairs (list[EnrollmentRequest]): the batch's pairs for this backend.
            context (OperationContext): where they come from.
        """
        return nullcontext()

    def get_enrollment(self, email, course_key):
        """
        Returns:
            EnrollmentState: the learner's current standing in the course.
        """
        raise NotImplementedError

    def set_enrollment(self, learner, course_key, active=True, mode=None, context=None):
        """
        Enroll (``active=True``) or unenroll (``active=False``) a learner.

        Arguments:
            learner (Learner): who.
            course_key (CourseKey): which course.
            active (bool): enroll or unenroll.
            mode (str | None): the mode to enroll in; None keeps an existing
                enrollment's mode (never a downgrade) or uses the course default.
            context (OperationContext): where the request comes from.

        Returns:
            EnrollmentResult

        Raises:
            TransientBackendError: try again later.
            BackendError: this course cannot be done.
        """
        raise NotImplementedError
