"""
A remote Open edX site, over its REST API.

For operators who run several Open edX sites from one bridge, or who keep the
bridge out of the LMS. It calls the endpoints our REST API decision record
names (accounts, enrollment, enrollment_allowed, course details), as an OAuth2
client-credentials application whose service user is global staff.

Options:
    CLIENT_ID, CLIENT_SECRET (str): the OAuth2 application (required).
    TIMEOUT (float | [connect, read]): seconds per HTTP call (default [3.05, 10]).
    MAX_ATTEMPTS (int): tries per call on connection errors, 429 and 5xx (default 4).
    MAX_RETRY_SECONDS (float): bound on the total waiting of one call's retries (default 20).
    BACKOFF_SECONDS (float): first backoff, doubled each retry, with jitter (default 0.5).
    INCLUDE_EXPIRED_MODES (bool): accept modes past their upgrade deadline (default False).

Whether to force enrollments is the source's policy (``FORCE_ENROLLMENT``),
not the backend's: it arrives in the operation context.

What the sender is told never names the site's base URL (it may be an
internal address); the audit row's ``error`` keeps the full story.
"""
import hashlib
import logging
import random
import threading
import time
from datetime import UTC, datetime
from urllib.parse import quote

import jwt
import requests
from django.core.cache import cache
from edx_rest_api_client.client import get_oauth_access_token

from lms_bridge.models import Outcome

from .base import (
    ENROLL,
    LOOKALIKE_ACCOUNT,
    LOOKALIKE_ALLOWANCE,
    AmbiguousAccountError,
    BackendConfigurationError,
    BackendError,
    DeliveryMemo,
    EnrollmentBackend,
    EnrollmentResult,
    EnrollmentState,
    TransientBackendError,
    allowance_detail,
    closed_reason,
    full_detail,
    no_default_mode_detail,
    pick_account,
    split_by_email,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 10.0)
TOKEN_MARGIN_SECONDS = 60
COURSE_CACHE_SECONDS = 60
ALLOWANCES_PATH = "/api/enrollment/v1/enrollment_allowed/"  # the trailing slash is required
# The enrollment API's one answer for a closed, invitation-only or full course.
GENERIC_ENROLLMENT_ERROR = "An error occurred while creating the new course enrollment"


def _timestamp(value):
    """An ISO 8601 time of the course details, or None."""
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def token_claims(token):
    """
    The claims of the LMS's JWT, read without verifying its signature (the LMS that
    issued it is the one that checks it): for diagnostics only, never for a decision
    the LMS makes itself. ``{}`` when the token is not a JWT.
    """
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


class OpenEdxApiBackend(EnrollmentBackend):
    """Enrolls learners in a remote Open edX LMS through its REST API."""

    def __init__(self, configuration):
        super().__init__(configuration)
        options = configuration.options
        self.base_url = configuration.base_url.rstrip("/")
        timeout = options.get("TIMEOUT", DEFAULT_TIMEOUT)
        self.timeout = tuple(timeout) if isinstance(timeout, (list, tuple)) else (timeout, timeout)
        self.max_attempts = int(options.get("MAX_ATTEMPTS", 4))
        self.max_retry_seconds = float(options.get("MAX_RETRY_SECONDS", 20))
        self.backoff_seconds = float(options.get("BACKOFF_SECONDS", 0.5))
        # One session per backend: connections are reused across deliveries.
        self.session = requests.Session()
        self._lock = threading.Lock()
        self._token = None
        self._token_valid_until = 0.0
        self._courses = {}
        # What ``settled`` read, kept briefly for the same delivery's ``set_enrollment`` calls
        # (so a pair that changes costs no second lookup), by (delivery, kind, key).
        self._reads = DeliveryMemo()
        self.token_requests = 0

    @classmethod
    def check_configuration(cls, configuration):
        problems = []
        if not str(configuration.base_url or "").startswith(("http://", "https://")):
            problems.append("BASE_URL must be the site's http(s) URL")
        for key in ("CLIENT_ID", "CLIENT_SECRET"):
            if not isinstance(configuration.options.get(key), str) or not configuration.options.get(key):
                problems.append(f"OPTIONS['{key}'] is required (an OAuth2 client-credentials application)")
        if "FORCE_ENROLLMENT" in configuration.options:
            problems.append("OPTIONS['FORCE_ENROLLMENT'] is no longer a backend option: set FORCE_ENROLLMENT "
                            "on the sources whose deliveries may force enrollments")
        return problems

    # Authentication

    @property
    def _token_cache_key(self):
        """The shared cache's key of this site's token: by base URL and client id (hashed), never the secret."""
        client = f"{self.base_url}|{self.configuration.options.get('CLIENT_ID')}"
        return "lms_bridge:remote-token:" + hashlib.sha256(client.encode()).hexdigest()

    def _shared_token(self):
        """(token, seconds it stays usable) from the cache every worker process shares, or None."""
        try:
            entry = cache.get(self._token_cache_key)
        except Exception:  # pylint: disable=broad-except
            return None  # a cache that is down costs a token request, nothing else
        if not entry or entry[1] - time.time() <= 0:
            return None
        return entry[0], entry[1] - time.time()

    def _share_token(self, token, usable_seconds):
        """Put the token in the shared cache for its usable life."""
        if usable_seconds <= 0:
            return
        try:
            cache.set(self._token_cache_key, (token, time.time() + usable_seconds), timeout=int(usable_seconds))
        except Exception:  # pylint: disable=broad-except
            log.debug("lms_bridge: the shared cache did not take the remote token")

    def _forget_shared_token(self):
        """Drop the shared token (the LMS refused it): no process should use it again."""
        try:
            cache.delete(self._token_cache_key)
        except Exception:  # pylint: disable=broad-except
            log.debug("lms_bridge: the shared cache did not drop the remote token")

    def _access_token(self, refresh=False):
        """
        A JWT for the service user, fetched once and shared (in this process, and through
        Django's cache with the other worker processes) until shortly before it expires.
        """
        with self._lock:
            if refresh:
                self._forget_shared_token()
            elif self._token is None or time.monotonic() >= self._token_valid_until:
                shared = self._shared_token()
                if shared:
                    self._token, self._token_valid_until = shared[0], time.monotonic() + shared[1]
            if refresh or self._token is None or time.monotonic() >= self._token_valid_until:
                try:
                    token, expires_at = get_oauth_access_token(
                        self.base_url, self.configuration.options.get("CLIENT_ID"),
                        self.configuration.options.get("CLIENT_SECRET"), token_type="jwt",  # noqa: S106 (a token type, not a password)
                        timeout=self.timeout,
                    )
                except requests.HTTPError as exc:
                    status = exc.response.status_code if exc.response is not None else None
                    if status in (400, 401, 403):
                        raise BackendConfigurationError(
                            f"{self.base_url} refused the OAuth2 client credentials (HTTP {status}): "
                            "check CLIENT_ID and CLIENT_SECRET",
                        ) from None
                    raise TransientBackendError(
                        f"The LMS could not issue a token (HTTP {status}); retry later",
                        f"{self.base_url} could not issue a token (HTTP {status})",
                    ) from None
                except requests.RequestException as exc:
                    raise TransientBackendError(
                        f"The LMS could not issue a token ({type(exc).__name__}); retry later",
                        f"{self.base_url} could not issue a token ({type(exc).__name__})",
                    ) from None
                lifetime = (expires_at - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
                self._token = token
                self._token_valid_until = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
                self.token_requests += 1
                self._share_token(token, lifetime - TOKEN_MARGIN_SECONDS)
            return self._token

    # HTTP with retries

    @staticmethod
    def _retry_after(response):
        """The seconds of a reply's ``Retry-After`` (the delay form), or None."""
        value = response.headers.get("Retry-After", "").strip() if response is not None else ""
        return int(value) if value.isdigit() else None

    def _call(self, method, path, what, params=None, json=None):
        """
        One API call, retried on connection errors, timeouts, 429 and 5xx (bounded), refreshing the token once on 401.

        Retries wait what the site's ``Retry-After`` says, else an exponential
        backoff with jitter. A wait longer than what is left of the retry
        budget is not slept: the call fails at once as transient, carrying the
        site's ``Retry-After`` for the sender.

        Returns:
            requests.Response: any other answer, for the caller to read.

        Raises:
            TransientBackendError: the site did not answer usefully within the retry bounds.
            BackendError: the site kept answering 500 (an internal error for this request, not an outage).
            BackendConfigurationError: the service user lacks a permission, or its token is refused.
        """
        started = time.monotonic()
        attempt, refreshed, statuses = 0, False, []
        while True:
            attempt += 1
            response = None
            try:
                response = self.session.request(
                    method, self.base_url + path, params=params, json=json, timeout=self.timeout,
                    headers={"Authorization": f"JWT {self._access_token()}", "Accept": "application/json"},
                    allow_redirects=False,
                )
                reason = f"HTTP {response.status_code}"
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                # The connection failed or broke mid-reply: worth another try.
                reason = type(exc).__name__
            statuses.append(response.status_code if response is not None else None)
            if response is not None:
                if response.status_code == 401 and not refreshed:
                    refreshed = True
                    self._access_token(refresh=True)
                    attempt -= 1
                    continue
                if response.status_code == 401:
                    raise BackendConfigurationError(f"{what}: {self.base_url} refuses the service user's token")
                if response.status_code == 403:
                    raise BackendConfigurationError(
                        f"{what}: the service user of {self.base_url} lacks the permission "
                        "(it must be global staff)",
                    )
                if response.status_code != 429 and response.status_code < 500:
                    return response
            retry_after = self._retry_after(response)
            wait = retry_after if retry_after is not None else (
                self.backoff_seconds * (2 ** (attempt - 1)) * (0.5 + random.random()))
            if attempt >= self.max_attempts or time.monotonic() - started + wait > self.max_retry_seconds:
                self._give_up(what, reason, attempt, statuses, retry_after)
            log.warning("lms_bridge %s: %s answered %s; retrying in %.1f s", what, self.base_url, reason, wait)
            time.sleep(wait)

    def _give_up(self, what, reason, attempt, statuses, retry_after):
        """Raise the failure of a call whose retries are spent (see ``_call``)."""
        internal = f"{what}: {self.base_url} did not answer usefully ({reason}) after {attempt} tries"
        if all(status == 500 for status in statuses):
            # An outage looks like refused connections, timeouts, 502-504 or 429;
            # a 500 to every try is this request breaking the LMS (two accounts
            # whose emails differ only in case make Open edX's account lookup do
            # that): retrying for ever would not help.
            raise BackendError(
                f"{what}: the LMS answered 500 (an internal error) to each of {attempt} tries; support must look "
                "at this learner's account (two accounts sharing this email in different letter case cause this)",
                internal,
            )
        raise TransientBackendError(f"{what}: the LMS did not answer ({reason}) after {attempt} tries; retry later",
                                    internal, retry_after=retry_after)

    @staticmethod
    def _message(response):
        """The site's error message, for the sender and the audit."""
        try:
            data = response.json()
        except ValueError:
            return f"HTTP {response.status_code}"
        if isinstance(data, dict):
            for key in ("message", "developer_message", "detail", "error"):
                if data.get(key):
                    return str(data[key])[:500]
        return f"HTTP {response.status_code}"

    def _error(self, what, response):
        """The permanent failure of an unexpected answer, with the site's own message."""
        message = self._message(response)
        return BackendError(f"{what}: the LMS answered {response.status_code}: {message}",
                            f"{what}: {self.base_url} answered {response.status_code}: {message}")

    # Reads

    def _course(self, course_key):
        """The course's enrollment details (with its modes), or None when the site has no such course."""
        key = str(course_key)
        cached = self._courses.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        params = {"include_expired": 1} if self.configuration.options.get("INCLUDE_EXPIRED_MODES") else None
        response = self._call("GET", f"/api/enrollment/v1/course/{quote(key, safe=':+')}", "course lookup",
                              params=params)
        if response.status_code in (400, 404):
            details = None
        elif response.status_code == 200:
            details = response.json()
        else:
            raise self._error("course lookup", response)
        self._courses[key] = (time.monotonic() + COURSE_CACHE_SECONDS, details)
        return details

    def _account(self, email):
        """
        The account with this email, ignoring letter case only.

        The site's lookup follows its database's collation (accents and letter
        width ignored on MySQL), so what it returns is checked here.

        Returns:
            tuple: (the account dict or None, whether a lookalike account was returned).

        Raises:
            AmbiguousAccountError: several accounts have this email.
        """
        response = self._call("GET", "/api/user/v1/accounts", "account lookup", params={"email": email})
        if response.status_code == 404:
            return None, False
        if response.status_code != 200:
            raise self._error("account lookup", response)
        accounts = response.json()
        accounts = [item for item in (accounts if isinstance(accounts, list) else [accounts]) if isinstance(item, dict)]
        return pick_account(accounts, email, lambda account: account.get("email"))

    def _allowance_rows(self, email, course_key):
        """This email's allowances for the course (lookalike emails' rows filtered out), and whether any was seen."""
        response = self._call("GET", ALLOWANCES_PATH, "allowance lookup", params={"email": email})
        if response.status_code != 200:
            raise self._error("allowance lookup", response)
        rows = [row for row in response.json() if isinstance(row, dict) and str(row.get("course_id")) == str(
            course_key)]
        return split_by_email(rows, email, lambda row: row.get("email"))[0], bool(rows)

    def _enrollment(self, username, course_key):
        """The account's enrollment in the course, or None (the site answers 200 with an empty body then)."""
        path = f"/api/enrollment/v1/enrollment/{quote(username)},{quote(str(course_key), safe=':+')}"
        response = self._call("GET", path, "enrollment lookup")
        if response.status_code != 200:
            raise self._error("enrollment lookup", response)
        return response.json() if response.content.strip() else None

    def course_exists(self, course_key):
        return self._course(course_key) is not None

    def offers_mode(self, course_key, mode):
        details = self._course(course_key) or {}
        return mode in {course_mode.get("slug") for course_mode in details.get("course_modes", [])}

    def settled(self, pairs, context=None):
        """
        One account lookup per email of the delivery, and one enrollment lookup
        per pair of an active account: already-enrolled pairs are settled with
        no write. Pairs of emails without an active account are left to
        ``set_enrollment`` (the site's allowance list is per email, read there).
        What was read is reused by the same delivery's ``set_enrollment`` calls.
        """
        delivery = context.delivery if context else None
        self._reads.purge()
        accounts, results = {}, []
        for request in pairs:
            lowered = request.email.lower()
            if lowered not in accounts:
                try:
                    accounts[lowered] = self._account(request.email)
                except AmbiguousAccountError as exc:
                    accounts[lowered] = exc
            found = accounts[lowered]
            account = None if isinstance(found, Exception) or found[1] else found[0]
            result = None
            if request.action == ENROLL and account is not None and account.get("is_active"):
                enrollment = self._enrollment(account["username"], request.course_key)
                current = enrollment or {}
                if current.get("is_active") and request.mode in (None, current.get("mode")):
                    result = EnrollmentResult(Outcome.ALREADY_ENROLLED, mode=current.get("mode"))
                elif delivery:
                    self._reads.put((delivery, "enrollment", (account["username"], str(request.course_key))),
                                    enrollment)
            if result is None and delivery:
                self._reads.put((delivery, "account", lowered), found)
            results.append(result)
        return results

    def _recall(self, context, kind, key):
        """What ``settled`` read for this delivery (an enrollment is used once), or DeliveryMemo.MISSING."""
        if context is None:
            return DeliveryMemo.MISSING
        return self._reads.get((context.delivery, kind, key), pop=kind == "enrollment")

    def get_enrollment(self, email, course_key):
        account, _ = self._account(email)
        allowed = bool(self._allowance_rows(email, course_key)[0])
        if account is None:
            return EnrollmentState(allowed=allowed)
        enrollment = self._enrollment(account["username"], course_key)
        return EnrollmentState(
            account_exists=True, account_active=bool(account.get("is_active")),
            is_active=enrollment.get("is_active") if enrollment else None,
            mode=enrollment.get("mode") if enrollment else None, allowed=allowed,
        )

    # Writes

    def set_enrollment(self, learner, course_key, active=True, mode=None, context=None):
        found = self._recall(context, "account", learner.email.lower())
        try:
            if isinstance(found, Exception):
                raise found
            account, lookalike = self._account(learner.email) if found is DeliveryMemo.MISSING else found
        except AmbiguousAccountError as exc:
            return EnrollmentResult(Outcome.REFUSED, detail=exc.detail)
        force = bool(context and context.force_enrollment)
        if not active:
            return self._unenroll(account, learner.email, course_key)
        if account is None and lookalike:
            return EnrollmentResult(Outcome.REFUSED, detail=LOOKALIKE_ACCOUNT)
        if account is None or not account.get("is_active"):
            return self._allow(learner.email, course_key, mode, force)
        return self._enroll(account, course_key, mode, force, context)

    def _post_enrollment(self, username, course_key, mode, is_active, force=False):
        """Create or change an enrollment, always naming the mode."""
        body = {"user": username, "mode": mode, "is_active": is_active,
                "course_details": {"course_id": str(course_key)}}
        if force:
            body["force_enrollment"] = True
        # No trailing slash: with one, this endpoint is a 404.
        return self._call("POST", "/api/enrollment/v1/enrollment", "enrollment", json=body)

    def _offered_modes(self, course_key):
        """The mode slugs the site's course details list."""
        return {m.get("slug") for m in (self._course(course_key) or {}).get("course_modes", [])}

    def _policy_refusal(self, course_key):
        """Why the policy refuses new learners in the course (invitation-only, enrollment window), or None."""
        details = self._course(course_key) or {}
        return closed_reason(course_key, details.get("invite_only"), _timestamp(details.get("enrollment_start")),
                             _timestamp(details.get("enrollment_end")), datetime.now(UTC))

    def _enroll(self, account, course_key, mode, force, context=None):
        """
        Enroll an active account, keeping its mode unless another is asked for.

        The LMS checks a new enrollment itself (window, invitation, capacity)
        unless ``force_enrollment`` is sent, and answers one generic 400 for
        all three: the course details name which rule it was.
        """
        current = self._recall(context, "enrollment", (account["username"], str(course_key)))
        if current is DeliveryMemo.MISSING:
            current = self._enrollment(account["username"], course_key)
        if current and current.get("is_active") and (mode is None or mode == current.get("mode")):
            return EnrollmentResult(Outcome.ALREADY_ENROLLED, mode=current.get("mode"))
        # Always send the mode meant: without one the LMS re-activates in the default mode.
        target = mode or (current or {}).get("mode")
        if target is None:
            # The platform's choice (audit, else honor), refused where the course offers neither.
            offered = self._offered_modes(course_key)
            target = "audit" if "audit" in offered else "honor" if "honor" in offered else None
            if target is None:
                return EnrollmentResult(Outcome.REFUSED, detail=no_default_mode_detail(course_key, offered))
        response = self._post_enrollment(account["username"], course_key, target, True, force)
        if response.status_code == 400 and GENERIC_ENROLLMENT_ERROR in self._message(response):
            # Forced, only capacity can refuse (the REST API cannot enroll past it).
            detail = (None if force else self._policy_refusal(course_key)) or full_detail(course_key)
            return EnrollmentResult(Outcome.REFUSED, detail=detail)
        if response.status_code != 200:
            raise self._error("enrollment", response)
        enrollment = response.json()
        if current and current.get("is_active"):
            return EnrollmentResult(Outcome.MODE_CHANGED, detail=f"Mode changed from {current.get('mode')} to {target}",
                                    mode=enrollment.get("mode", target))
        return EnrollmentResult(Outcome.ENROLLED, mode=enrollment.get("mode", target))

    def _post_allowance(self, email, course_key):
        """Ask the site for an auto-enroll allowance; its answer is the caller's to read."""
        return self._call("POST", ALLOWANCES_PATH, "allowance",
                          json={"email": email, "course_id": str(course_key), "auto_enroll": True})

    def _allow(self, email, course_key, mode, force):
        """
        Create (or confirm) an auto-enroll allowance, ending as the in-process backend does.

        The site validates nothing here, so the policy is applied first: unless
        forced, no new allowance for an invitation-only course or one outside
        its enrollment window (an existing one is an invitation already made).
        The site answers 409 for an existing row and never updates it: a row
        staff created without ``auto_enroll`` would never enroll the learner,
        so it is replaced by one that does.
        """
        detail = allowance_detail(mode)
        refusal = None if force else self._policy_refusal(course_key)
        if refusal and not self._allowance_rows(email, course_key)[0]:
            return EnrollmentResult(Outcome.REFUSED, detail=refusal)
        response = self._post_allowance(email, course_key)
        if response.status_code == 409:
            same, _ = self._allowance_rows(email, course_key)
            if not same:
                # The site's unique index treats a lookalike email as this one.
                return EnrollmentResult(Outcome.REFUSED, detail=LOOKALIKE_ALLOWANCE)
            if any(row.get("auto_enroll") for row in same):
                return EnrollmentResult(Outcome.ALREADY_ALLOWED, detail=detail)
            self._delete_allowance(same[0]["email"], course_key)
            response = self._post_allowance(email, course_key)
            if response.status_code == 409:
                return EnrollmentResult(Outcome.ALREADY_ALLOWED, detail=detail)
        if response.status_code not in (200, 201):
            raise self._error("allowance", response)
        return EnrollmentResult(Outcome.ALLOWED, detail=detail)

    def _delete_allowance(self, exact_email, course_key):
        """Delete one allowance, named by the email exactly as the site stores it."""
        response = self._call("DELETE", ALLOWANCES_PATH, "allowance removal",
                              json={"email": exact_email, "course_id": str(course_key)})
        if response.status_code not in (200, 204, 404):
            raise self._error("allowance removal", response)
        return response.status_code != 404

    def _unenroll(self, account, email, course_key):
        """Deactivate the enrollment (in its own mode) and remove this email's allowance (never a lookalike's)."""
        unenrolled = False
        if account is not None:
            current = self._enrollment(account["username"], course_key)
            if current and current.get("is_active"):
                # The current mode, or the LMS answers "Enrollment mode mismatch".
                response = self._post_enrollment(account["username"], course_key, current.get("mode"), False)
                if response.status_code != 200:
                    raise self._error("unenrollment", response)
                unenrolled = True
        same, _ = self._allowance_rows(email, course_key)
        removed = False
        for row in same:
            removed = self._delete_allowance(row["email"], course_key) or removed
        if unenrolled:
            return EnrollmentResult(Outcome.UNENROLLED)
        if removed:
            return EnrollmentResult(Outcome.UNENROLLED, detail="Enrollment allowance removed")
        return EnrollmentResult(Outcome.NOT_ENROLLED)

    def check(self):
        """
        Authenticate, read the token's claims, and make one cheap read; raise what goes
        wrong (for the check command), or return what the operator should know.
        """
        claims = token_claims(self._access_token(refresh=True))
        user = claims.get("preferred_username") or "the service user"
        if claims.get("administrator") is False:
            raise BackendConfigurationError(
                f"{self.base_url} issued a token for {user}, who is not global staff (JWT claim administrator: "
                "false): the LMS refuses its account lookups (403) and other learners' enrollments (404). Make "
                f"{user} staff on that site (./manage.py lms manage_user {user} <email> --staff), then check again",
            )
        response = self._call("GET", "/api/user/v1/accounts", "account lookup",
                              params={"email": "lms-bridge-check@invalid.invalid"})
        if response.status_code not in (200, 404):
            raise self._error("account lookup", response)
        if not claims:
            return "token is not a JWT: the enrollment allowance API will refuse it"
        remaining = int(claims["exp"] - time.time()) if isinstance(claims.get("exp"), (int, float)) else None
        staff = "global staff" if claims.get("administrator") else "staff status not in the token"
        return f"{user}, {staff}" + (f", token valid {remaining} s" if remaining is not None else "")
