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
    FORCE_ENROLLMENT (bool): send ``force_enrollment`` (enroll past enrollment end; default False).
    INCLUDE_EXPIRED_MODES (bool): accept modes past their upgrade deadline (default False).
"""
import logging
import random
import threading
import time
from datetime import UTC, datetime
from urllib.parse import quote

import requests
from edx_rest_api_client.client import get_oauth_access_token

from lms_bridge.models import Outcome

from .base import (
    BackendConfigurationError,
    BackendError,
    EnrollmentBackend,
    EnrollmentResult,
    EnrollmentState,
    TransientBackendError,
    allowance_detail,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 10.0)
TOKEN_MARGIN_SECONDS = 60
COURSE_CACHE_SECONDS = 60
MAX_RETRY_AFTER_SECONDS = 30


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
        self.token_requests = 0

    @classmethod
    def check_configuration(cls, configuration):
        problems = []
        if not str(configuration.base_url or "").startswith(("http://", "https://")):
            problems.append("BASE_URL must be the site's http(s) URL")
        for key in ("CLIENT_ID", "CLIENT_SECRET"):
            if not isinstance(configuration.options.get(key), str) or not configuration.options.get(key):
                problems.append(f"OPTIONS['{key}'] is required (an OAuth2 client-credentials application)")
        return problems

    # Authentication

    def _access_token(self, refresh=False):
        """A JWT for the service user, fetched once and shared until shortly before it expires."""
        with self._lock:
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
                    raise TransientBackendError(f"{self.base_url} could not issue a token (HTTP {status})") from None
                except requests.RequestException as exc:
                    raise TransientBackendError(
                        f"{self.base_url} could not issue a token ({type(exc).__name__})",
                    ) from None
                lifetime = (expires_at - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
                self._token = token
                self._token_valid_until = time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)
                self.token_requests += 1
            return self._token

    # HTTP with retries

    def _backoff(self, attempt, response=None):
        """Seconds to wait before the next try: Retry-After when the site says, else exponential with jitter."""
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.strip().isdigit():
                return min(float(retry_after), MAX_RETRY_AFTER_SECONDS)
        return self.backoff_seconds * (2 ** (attempt - 1)) * (0.5 + random.random())

    def _call(self, method, path, what, params=None, json=None):
        """
        One API call, retried on connection errors, timeouts, 429 and 5xx (bounded), refreshing the token once on 401.

        Returns:
            requests.Response: any other answer, for the caller to read.

        Raises:
            TransientBackendError: the site did not answer usefully within the retry bounds.
            BackendConfigurationError: the service user lacks a permission, or its token is refused.
        """
        started = time.monotonic()
        attempt, refreshed = 0, False
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
            wait = self._backoff(attempt, response)
            if attempt >= self.max_attempts or time.monotonic() - started + wait > self.max_retry_seconds:
                raise TransientBackendError(f"{what}: {self.base_url} did not answer ({reason}) after {attempt} tries")
            log.warning("lms_bridge %s: %s answered %s; retrying in %.1f s", what, self.base_url, reason, wait)
            time.sleep(wait)

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
        return BackendError(f"{what}: {self.base_url} answered {response.status_code}: {self._message(response)}")

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
        """The account with this email (the site matches it case-insensitively), or None."""
        response = self._call("GET", "/api/user/v1/accounts", "account lookup", params={"email": email})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error("account lookup", response)
        accounts = response.json()
        accounts = accounts if isinstance(accounts, list) else [accounts]
        return accounts[0] if accounts else None

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

    def get_enrollment(self, email, course_key):
        account = self._account(email)
        response = self._call("GET", "/api/enrollment/v1/enrollment_allowed/", "allowance lookup",
                              params={"email": email})
        if response.status_code != 200:
            raise self._error("allowance lookup", response)
        allowed = any(str(item.get("course_id")) == str(course_key) for item in response.json())
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
        account = self._account(learner.email)
        if not active:
            return self._unenroll(account, learner.email, course_key)
        if account is None or not account.get("is_active"):
            return self._allow(learner.email, course_key, mode)
        return self._enroll(account, course_key, mode)

    def _post_enrollment(self, username, course_key, mode, is_active):
        """Create or change an enrollment, always naming the mode."""
        body = {"user": username, "mode": mode, "is_active": is_active,
                "course_details": {"course_id": str(course_key)}}
        if self.configuration.options.get("FORCE_ENROLLMENT"):
            body["force_enrollment"] = True
        # No trailing slash: with one, this endpoint is a 404.
        response = self._call("POST", "/api/enrollment/v1/enrollment", "enrollment", json=body)
        if response.status_code != 200:
            raise self._error("enrollment", response)
        return response.json()

    def _default_mode(self, course_key):
        """The course's default mode, as the LMS picks it (audit, else honor, else audit)."""
        slugs = {m.get("slug") for m in (self._course(course_key) or {}).get("course_modes", [])}
        return "honor" if "audit" not in slugs and "honor" in slugs else "audit"

    def _enroll(self, account, course_key, mode):
        """Enroll an active account, keeping its mode unless another is asked for."""
        current = self._enrollment(account["username"], course_key)
        if current and current.get("is_active") and (mode is None or mode == current.get("mode")):
            return EnrollmentResult(Outcome.ALREADY_ENROLLED, mode=current.get("mode"))
        # Always send the mode meant: without one the LMS re-activates in the default mode.
        target = mode or (current or {}).get("mode") or self._default_mode(course_key)
        enrollment = self._post_enrollment(account["username"], course_key, target, True)
        if current and current.get("is_active"):
            return EnrollmentResult(Outcome.MODE_CHANGED, detail=f"Mode changed from {current.get('mode')} to {target}",
                                    mode=enrollment.get("mode", target))
        return EnrollmentResult(Outcome.ENROLLED, mode=enrollment.get("mode", target))

    def _allow(self, email, course_key, mode):
        """Create (or confirm: 409) an auto-enroll allowance."""
        # Trailing slash required: without it a redirect drops the body.
        response = self._call("POST", "/api/enrollment/v1/enrollment_allowed/", "allowance",
                              json={"email": email, "course_id": str(course_key), "auto_enroll": True})
        detail = allowance_detail(mode)
        if response.status_code == 409:
            return EnrollmentResult(Outcome.ALREADY_ALLOWED, detail=detail)
        if response.status_code not in (200, 201):
            raise self._error("allowance", response)
        return EnrollmentResult(Outcome.ALLOWED, detail=detail)

    def _unenroll(self, account, email, course_key):
        """Deactivate the enrollment (in its own mode) and remove the allowance."""
        unenrolled = False
        if account is not None:
            current = self._enrollment(account["username"], course_key)
            if current and current.get("is_active"):
                # The current mode, or the LMS answers "Enrollment mode mismatch".
                self._post_enrollment(account["username"], course_key, current.get("mode"), False)
                unenrolled = True
        response = self._call("DELETE", "/api/enrollment/v1/enrollment_allowed/", "allowance removal",
                              json={"email": email, "course_id": str(course_key)})
        if response.status_code not in (200, 204, 404):
            raise self._error("allowance removal", response)
        if unenrolled:
            return EnrollmentResult(Outcome.UNENROLLED)
        if response.status_code != 404:
            return EnrollmentResult(Outcome.UNENROLLED, detail="Enrollment allowance removed")
        return EnrollmentResult(Outcome.NOT_ENROLLED)

    def check(self):
        """Authenticate and make one cheap read; raise what goes wrong (for the check command)."""
        self._access_token(refresh=True)
        response = self._call("GET", "/api/user/v1/accounts", "account lookup",
                              params={"email": "lms-bridge-check@invalid.invalid"})
        if response.status_code not in (200, 404):
            raise self._error("account lookup", response)
