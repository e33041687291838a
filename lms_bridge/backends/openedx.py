"""
The in-process Open edX backend: enrolls through the LMS's own Python APIs.

This is the only module of lms_bridge that imports edx-platform, and it does
so lazily (inside methods), so the rest of the application imports, checks
and tests without it. The APIs used are those of openedx-platform master:
``CourseEnrollment.enroll/unenroll/enrollment_mode_for_user``,
``CourseEnrollmentAllowed``, ``ManualEnrollmentAudit``, ``is_email_retired``,
``UserProfile`` (its absence), ``CourseMode.modes_for_course``,
``enrollments.api._default_course_mode``, ``UserRetirementStatus`` and
``CourseOverview``.

Options:
    INCLUDE_EXPIRED_MODES (bool): accept a mode whose upgrade deadline has
        passed (default False, as the LMS's enrollment API does).
"""
import logging
import threading
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from lms_bridge.models import Outcome

from .base import (
    ENROLL,
    LOOKALIKE_ACCOUNT,
    LOOKALIKE_ALLOWANCE,
    NO_PROFILE,
    UNENROLL,
    AmbiguousAccountError,
    BackendError,
    DeliveryMemo,
    EnrollmentBackend,
    EnrollmentResult,
    EnrollmentState,
    allowance_detail,
    closed_reason,
    full_detail,
    no_default_mode_detail,
    pick_account,
    same_email,
    split_by_email,
)

log = logging.getLogger(__name__)

# Emails per lookup query of a bulk read (bounded statements on very large deliveries).
LOOKUP_CHUNK = 500


def _chunks(items, size=LOOKUP_CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _email_lookup(emails, field="email"):
    """
    A filter on ``field`` for these emails, ignoring letter case (and, on MySQL, whatever its collation ignores).

    On MySQL ``IN`` already compares through the column's case-insensitive
    collation and uses its index; elsewhere each email is an ``iexact``.
    Callers check the rows in Python (``split_by_email``).
    """
    if connection.vendor == "mysql":
        return Q(**{f"{field}__in": list(emails)})
    lookup = Q()
    for email in emails:
        lookup |= Q(**{f"{field}__iexact": email})
    return lookup


def _platform():
    """
    Import the edx-platform symbols this backend uses.

    Imported at call time: plugin apps are loaded before the LMS's apps are
    ready, and the rest of lms_bridge must not depend on edx-platform.
    """
    # pylint: disable=import-outside-toplevel
    from common.djangoapps.course_modes.models import CourseMode
    from common.djangoapps.student import models as student
    from openedx.core.djangoapps.content.course_overviews.models import CourseOverview
    from openedx.core.djangoapps.enrollments.api import _default_course_mode
    from openedx.core.djangoapps.user_api.models import UserRetirementStatus

    return SimpleNamespace(student=student, CourseMode=CourseMode, CourseOverview=CourseOverview,
                           default_mode=_default_course_mode, UserRetirementStatus=UserRetirementStatus)


class OpenEdxBackend(EnrollmentBackend):
    """Enrolls learners in the Open edX LMS this application runs in."""

    transactional = True

    def __init__(self, configuration):
        super().__init__(configuration)
        # (delivery, course) -> (default mode, offered modes): see _default_mode.
        self._defaults = DeliveryMemo(limit=10_000)
        # (delivery, lower-case email) -> user id of the accounts ``settled`` found for pairs
        # it left to set_enrollment: locked by id there, with no second lookup by email.
        self._accounts = DeliveryMemo()
        # The accounts the current batch of this thread locked (see ``batch``), by id.
        self._batch = threading.local()

    def check(self):
        # A cheap read of the LMS's course table: proves the platform's models are there.
        _platform().CourseOverview.objects.order_by().values_list("id", flat=True)[:1].exists()

    def course_exists(self, course_key):
        # One row per published course; needs no modulestore.
        return _platform().CourseOverview.objects.filter(id=course_key).exists()

    def existing_courses(self, course_keys):
        # One query for all the courses of a delivery.
        return set(_platform().CourseOverview.objects.filter(id__in=list(course_keys)).values_list("id", flat=True))

    def offers_mode(self, course_key, mode):
        return mode in self._offered_modes(course_key)

    def _offered_modes(self, course_key):
        """The slugs of the modes learners can be enrolled in (expired ones only with INCLUDE_EXPIRED_MODES)."""
        modes = _platform().CourseMode.modes_for_course(
            course_id=course_key,
            include_expired=bool(self.configuration.options.get("INCLUDE_EXPIRED_MODES", False)),
            only_selectable=False,
        )
        return {course_mode.slug for course_mode in modes}

    def supported_modes(self, pairs):
        # One query for every course of the delivery; the same modes as modes_for_course(only_selectable=False).
        course_keys = list({course_key for course_key, _ in pairs})
        if not course_keys:
            return set()
        CourseMode = _platform().CourseMode  # noqa: N806
        all_modes, unexpired = CourseMode.all_and_unexpired_modes_for_courses(course_keys)
        chosen = all_modes if self.configuration.options.get("INCLUDE_EXPIRED_MODES", False) else unexpired
        offered = {key: {mode.slug for mode in (chosen.get(key) or [CourseMode.DEFAULT_MODE])} for key in course_keys}
        return {(course_key, mode) for course_key, mode in pairs if mode in offered[course_key]}

    def settled(self, pairs, context=None):  # pylint: disable=too-many-statements
        """
        Bulk, lock-free reads: the accounts of all the emails in one query, their
        enrollments in the courses in one, the allowances (and retirements in
        progress) in one each; every query chunked for very large sets.

        Whatever is unusual goes to ``set_enrollment``, which decides it under
        its lock and names why: several accounts for one email, an email the
        database confuses with another one's (any row a lookup returned for an
        email nobody asked about makes every account-less request of that
        lookup doubtful), an account being retired.
        """
        if not pairs:
            return []
        platform = _platform()
        student = platform.student
        emails = {request.email.lower(): request.email for request in pairs}
        course_keys = list({request.course_key for request in pairs})

        users, doubtful = {}, set()
        for chunk in _chunks(emails.values()):
            found = defaultdict(list)
            for user in get_user_model().objects.filter(_email_lookup(chunk)).only("id", "email", "is_active"):
                found[user.email.lower()].append(user)
            lookalikes = any(lowered not in emails for lowered in found)
            for email in chunk:
                same = found.get(email.lower(), [])
                if len(same) == 1:
                    users[email.lower()] = same[0]
                elif same or lookalikes:
                    doubtful.add(email.lower())

        enrollments = {}
        for chunk in _chunks([user.id for user in users.values() if user.is_active]):
            rows = student.CourseEnrollment.objects.filter(user_id__in=chunk, course_id__in=course_keys).values_list(
                "user_id", "course_id", "mode", "is_active")
            enrollments.update({(user_id, course_id): (mode, active) for user_id, course_id, mode, active in rows})

        without_account = [emails[lowered] for lowered in emails
                           if lowered not in doubtful and not getattr(users.get(lowered), "is_active", False)]
        unenrolling = [request.email for request in pairs if request.action == UNENROLL]
        allowances = defaultdict(list)
        for chunk in _chunks({email.lower(): email for email in without_account + unenrolling}.values()):
            asked = {email.lower() for email in chunk}
            rows = student.CourseEnrollmentAllowed.objects.filter(
                _email_lookup(chunk), course_id__in=course_keys).values_list("email", "course_id", "auto_enroll")
            for email, course_id, auto_enroll in rows:
                if email.lower() in asked:
                    allowances[(email.lower(), course_id)].append((email, auto_enroll))
                else:
                    # Another email's allowance the database confuses with one of these.
                    doubtful.update(lowered for lowered in asked if not getattr(users.get(lowered), "is_active", False))
            doubtful.update(original.lower() for original in platform.UserRetirementStatus.objects.filter(
                _email_lookup(chunk, "original_email")).values_list("original_email", flat=True))

        results = []
        delivery = context.delivery if context else None
        self._accounts.purge()
        self._defaults.purge()
        for request in pairs:
            lowered = request.email.lower()
            user = users.get(lowered)
            active_account = user is not None and user.is_active
            if delivery and user is not None and lowered not in doubtful:
                self._accounts.put((delivery, lowered), user.pk)
            if lowered in doubtful and not (request.action == ENROLL and active_account):
                results.append(None)
                continue
            enrollment = (None, None)
            if active_account:
                enrollment = enrollments.get((user.id, request.course_key), enrollment)
            rows = allowances.get((lowered, request.course_key), [])
            if request.action == ENROLL and active_account:
                mode, is_active = enrollment
                settled = is_active and request.mode in (None, mode)
                results.append(EnrollmentResult(Outcome.ALREADY_ENROLLED, mode=mode) if settled else None)
            elif request.action == ENROLL:
                allowed = next((row for row in rows if row[0] == request.email), rows[0] if rows else None)
                settled = allowed is not None and allowed[1]
                results.append(EnrollmentResult(Outcome.ALREADY_ALLOWED, detail=allowance_detail(request.mode))
                               if settled else None)
            else:
                settled = not enrollment[1] and not rows and (user is None or user.is_active)
                results.append(EnrollmentResult(Outcome.NOT_ENROLLED) if settled else None)
        return results

    @contextmanager
    def batch(self, pairs, context=None):
        """
        Lock the accounts ``settled`` found for the batch's pairs, in one statement and
        in id order, for the rest of the transaction the batch runs in.

        ``set_enrollment`` then takes its account from here instead of a locking read
        of its own, and a learner's pairs share one account object (what the platform
        loads on it, the profile, is read once per batch). The locks are the ones each
        pair would take, taken together and in a fixed order: two batches with common
        learners wait for each other instead of deadlocking. Outside a transaction
        nothing is locked (each pair then locks in its own).
        """
        ids = set()
        if context is not None and transaction.get_connection().in_atomic_block:
            ids = {found for request in pairs if (found := self._known_account(context, request.email)) is not None}
        locked = {}
        for chunk in _chunks(sorted(ids)):
            locked.update({user.pk: user for user in
                           get_user_model().objects.select_for_update().filter(pk__in=chunk).order_by("pk")})
        self._batch.accounts = locked
        try:
            yield
        finally:
            self._batch.accounts = {}

    def get_enrollment(self, email, course_key):
        platform = _platform()
        user, _ = self._find_user(email)
        allowed = bool(self._allowances(platform, email, course_key)[0])
        if user is None:
            return EnrollmentState(allowed=allowed)
        mode, is_active = platform.student.CourseEnrollment.enrollment_mode_for_user(user, course_key)
        return EnrollmentState(
            account_exists=True, account_active=user.is_active, is_active=is_active, mode=mode, allowed=allowed,
        )

    def set_enrollment(self, learner, course_key, active=True, mode=None, context=None):
        platform = _platform()
        reason = context.reason if context else "lms_bridge"
        force = bool(context and context.force_enrollment)
        # Inside the caller's transaction when there is one (no savepoint needed:
        # any error undoes the whole operation), else in one of its own.
        with transaction.atomic(savepoint=False):
            # The account row is locked until the transaction ends: concurrent
            # deliveries about one account are serialized across processes, or
            # both would read "not enrolled" and both report (and audit) an
            # enrollment. Emails without an account are serialized by the
            # unique (email, course) index of the allowances instead.
            try:
                user, lookalike = self._find_user(learner.email, lock=True, known=self._known_account(context,
                                                                                                   learner.email),
                                                  locked=getattr(self._batch, "accounts", None))
            except AmbiguousAccountError as exc:
                # Answered, not raised: raising would doom the caller's transaction.
                return EnrollmentResult(Outcome.REFUSED, detail=exc.detail)
            if not active:
                return self._unenroll(platform, user, learner.email, course_key, reason)
            if user is None and lookalike:
                # On MySQL that account would also take this email's allowance on activation.
                return EnrollmentResult(Outcome.REFUSED, detail=LOOKALIKE_ACCOUNT)
            if user is None or not user.is_active:
                return self._allow(platform, learner.email, course_key, mode, reason, force)
            return self._enroll(platform, user, course_key, mode, reason, force, context.delivery if context else None)

    def _known_account(self, context, email):
        """The id of the account ``settled`` found for this email in this delivery, or None."""
        if context is None:
            return None
        found = self._accounts.get((context.delivery, email.lower()))
        return None if found is DeliveryMemo.MISSING else found

    @staticmethod
    def _find_user(email, lock=False, known=None, locked=None):
        """
        Find the account of an email, ignoring letter case only (and lock it, with ``lock``).

        ``iexact`` follows the column's collation: on MySQL it also matches
        emails that differ in accents or letter width, so the rows are
        checked in Python (``pick_account``): an exact match wins; several
        accounts differing only in case are ambiguous and refused.

        Arguments:
            known (int | None): the id of the account the delivery's bulk read found.
            locked (dict | None): the accounts the current batch locked, by id (``batch``).

        Returns:
            tuple: (the user or None, whether a lookalike account exists).

        Raises:
            AmbiguousAccountError: several accounts have this email.
        """
        if known is not None and lock:
            # The account the delivery's bulk read found (one email, one account, no lookalike):
            # locked by primary key (by the batch, or now), and checked again, with no scan of
            # the accounts by email.
            user = (locked or {}).get(known) or get_user_model().objects.select_for_update().filter(pk=known).first()
            if user is not None and same_email(user.email, email):
                return user, False
        users = get_user_model().objects.filter(email__iexact=email)
        user, lookalike = pick_account(list(users[:10]), email, lambda account: account.email)
        if lock and user is not None:
            # Locked by primary key, after an unlocked lookup: a locking read by email would lock
            # every row it scans (the email column need not be indexed), serializing every delivery.
            user = get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            if user is None or not same_email(user.email, email):
                return None, lookalike  # deleted or changed meanwhile: nobody to enroll under this email
        return user, lookalike

    @staticmethod
    def _allowances(platform, email, course_key):
        """
        The email's allowances for the course, and the lookalike ones (see ``_find_user``).

        Returns:
            tuple[list, list]: (allowances of this email, allowances of lookalike emails).
        """
        rows = platform.student.CourseEnrollmentAllowed.objects.filter(email__iexact=email, course_id=course_key)
        return split_by_email(list(rows), email, lambda row: row.email)

    @staticmethod
    def _audit(platform, email, transition, reason, enrollment=None):
        # A webhook has no acting user: enrolled_by stays empty and the reason
        # names lms_bridge, the source and the delivery for course staff.
        platform.student.ManualEnrollmentAudit.create_manual_enrollment_audit(
            None, email, transition, reason, enrollment,
        )

    def _enroll(self, platform, user, course_key, mode, reason, force,  # pylint: disable=too-many-arguments
                delivery=None):
        """
        Enroll an active account, keeping its mode unless another is asked for.

        A new enrollment goes through the platform's own access checks
        (``check_access``: enrollment window, invitation-only, capacity) unless
        the source forces it; an account that already has an enrollment row is
        re-enrolled or changes mode without them, as the enrollment REST API
        does for global staff, so both backends agree.
        """
        student = platform.student
        current_mode, is_active = student.CourseEnrollment.enrollment_mode_for_user(user, course_key)
        if is_active and (mode is None or mode == current_mode):
            return EnrollmentResult(Outcome.ALREADY_ENROLLED, mode=current_mode)
        # enroll() with mode=None would reset an existing enrollment to the
        # course's default mode (a downgrade for a verified learner), so an
        # inactive enrollment is reactivated in the mode it had.
        target_mode = mode or current_mode
        if target_mode is None:
            # The platform's choice; enroll() would take "audit" even where the
            # course does not offer it, which its enrollment API refuses.
            target_mode, offered = self._default_mode(platform, course_key, delivery)
            if target_mode not in offered:
                return EnrollmentResult(Outcome.REFUSED, detail=no_default_mode_detail(course_key, offered))
        try:
            enrollment = student.CourseEnrollment.enroll(
                user, course_key, mode=target_mode, check_access=current_mode is None and not force,
            )
        except student.EnrollmentNotAllowed as exc:
            return EnrollmentResult(Outcome.REFUSED, detail=f"Open edX refused the enrollment: {exc}")
        except student.EnrollmentClosedError:
            return EnrollmentResult(Outcome.REFUSED, detail=self._closed_detail(platform, course_key))
        except student.CourseFullError:
            return EnrollmentResult(Outcome.REFUSED, detail=full_detail(course_key))
        except student.UserProfile.DoesNotExist as exc:
            # Raised, not answered: what enroll() wrote before failing must be undone.
            raise BackendError(NO_PROFILE) from exc
        except student.CourseEnrollmentException as exc:
            raise BackendError(f"Open edX could not enroll the learner: {type(exc).__name__}") from exc
        if is_active:
            self._audit(platform, user.email, student.ENROLLED_TO_ENROLLED, reason, enrollment)
            detail = f"Mode changed from {current_mode} to {enrollment.mode}"
            return EnrollmentResult(Outcome.MODE_CHANGED, detail=detail, mode=enrollment.mode)
        self._audit(platform, user.email, student.UNENROLLED_TO_ENROLLED, reason, enrollment)
        return EnrollmentResult(Outcome.ENROLLED, mode=enrollment.mode)

    def _default_mode(self, platform, course_key, delivery):
        """
        The platform's default mode for the course and the modes it offers, read
        once per delivery and course (a cohort's pairs share them).
        """
        key = (delivery, str(course_key))
        found = self._defaults.get(key) if delivery else DeliveryMemo.MISSING
        if found is DeliveryMemo.MISSING:
            found = (platform.default_mode(str(course_key)), self._offered_modes(course_key))
            if delivery:
                self._defaults.put(key, found)
        return found

    @staticmethod
    def _policy_refusal(platform, course_key):
        """Why the policy refuses new learners in the course (invitation-only, enrollment window), or None."""
        course = platform.CourseOverview.objects.filter(id=course_key).values(
            "invitation_only", "enrollment_start", "enrollment_end").first() or {}
        return closed_reason(course_key, course.get("invitation_only"), course.get("enrollment_start"),
                             course.get("enrollment_end"), datetime.now(UTC))

    def _closed_detail(self, platform, course_key):
        """The refusal of the platform's EnrollmentClosedError, naming which rule closed it."""
        return self._policy_refusal(platform, course_key) or f"Open edX refused the enrollment in course {course_key}"

    def _allow(self, platform, email, course_key, mode, reason, force):  # pylint: disable=too-many-arguments
        """
        Create (or confirm) an auto-enroll allowance for an email without an active account.

        The platform enrolls from it on activation whatever the course's rules,
        so a new allowance follows the enrollment policy: unless the source
        forces it, none for an invitation-only course or one outside its
        enrollment window. An existing allowance is an invitation already made.
        """
        student = platform.student
        if student.is_email_retired(email):
            return EnrollmentResult(Outcome.REFUSED, detail="This email belongs to a retired account")
        retiring = platform.UserRetirementStatus.objects.filter(original_email__iexact=email).values_list(
            "original_email", flat=True)
        if any(same_email(original, email) for original in retiring):
            # Requested, email not hashed yet: an allowance now would outlive the account.
            return EnrollmentResult(Outcome.REFUSED, detail="This email belongs to an account being retired")
        detail = allowance_detail(mode)
        same, lookalikes = self._allowances(platform, email, course_key)
        if not same and lookalikes:
            return EnrollmentResult(Outcome.REFUSED, detail=LOOKALIKE_ALLOWANCE)
        allowed = next((row for row in same if row.email == email), same[0] if same else None)
        refusal = None if force or allowed is not None else self._policy_refusal(platform, course_key)
        if refusal:
            return EnrollmentResult(Outcome.REFUSED, detail=refusal)
        if allowed is not None:
            if allowed.auto_enroll:
                return EnrollmentResult(Outcome.ALREADY_ALLOWED, detail=detail)
            allowed.auto_enroll = True
            allowed.save(update_fields=["auto_enroll"])
        else:
            try:
                # The savepoint keeps the surrounding transaction usable when a
                # concurrent delivery created the same (email, course) first.
                with transaction.atomic():
                    student.CourseEnrollmentAllowed.objects.create(email=email, course_id=course_key, auto_enroll=True)
            except IntegrityError:
                return EnrollmentResult(Outcome.ALREADY_ALLOWED, detail=detail)
        self._audit(platform, email, student.UNENROLLED_TO_ALLOWEDTOENROLL, reason)
        return EnrollmentResult(Outcome.ALLOWED, detail=detail)

    def _unenroll(self, platform, user, email, course_key, reason):
        """Deactivate the enrollment and remove the allowance."""
        student = platform.student
        unenrolled = False
        if user is not None:
            _, is_active = student.CourseEnrollment.enrollment_mode_for_user(user, course_key)
            if is_active:
                try:
                    student.CourseEnrollment.unenroll(user, course_key)
                except student.UnenrollmentNotAllowed as exc:
                    return EnrollmentResult(Outcome.REFUSED, detail=f"Open edX refused the unenrollment: {exc}")
                except student.UserProfile.DoesNotExist as exc:
                    raise BackendError(NO_PROFILE) from exc
                enrollment = student.CourseEnrollment.get_enrollment(user, course_key)
                self._audit(platform, user.email, student.ENROLLED_TO_UNENROLLED, reason, enrollment)
                unenrolled = True
        # The allowance goes too, or activating the account would enroll the learner again;
        # only this email's, never a lookalike's.
        same, _ = self._allowances(platform, email, course_key)
        removed = 0
        if same:
            removed, _ = student.CourseEnrollmentAllowed.objects.filter(pk__in=[row.pk for row in same]).delete()
        if unenrolled:
            return EnrollmentResult(Outcome.UNENROLLED)
        if removed:
            self._audit(platform, email, student.ALLOWEDTOENROLL_TO_UNENROLLED, reason)
            return EnrollmentResult(Outcome.UNENROLLED, detail="Enrollment allowance removed")
        return EnrollmentResult(Outcome.NOT_ENROLLED)
