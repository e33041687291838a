"""
A fake remote Open edX LMS: a real HTTP server on 127.0.0.1, started by the
tests, that answers like the endpoints the remote backend uses (as observed on
a running LMS: see shared/PLATFORM_FACTS.md), with its state in memory.

It issues JWTs with an expiry, checks them (``Authorization: JWT``), looks up
accounts, reads and writes enrollments (mode rules, 400/406 answers),
creates and deletes enrollment allowances (409 on duplicates, case-insensitive
like MySQL), describes courses, and can be told to throttle (429 with
Retry-After), fail (503), answer slowly, or refuse a non-staff service user.
"""
import json
import secrets
import threading
import time
import unicodedata
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

CLIENT_ID = "lms-bridge-client"
CLIENT_SECRET = "lms-bridge-client-secret-0123"


def collation_key(text):
    """
    How MySQL's utf8mb4_unicode_ci / utf8mb3_general_ci compare text: case,
    accents and letter width ignored (``ada@exämple.com`` = ``ADA@ｅxample.com``
    = ``ada@example.com``), as the real LMS's lookups and unique indexes do.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).lower()


class FakeOpenEdx:
    """The fake site's state and controls."""

    def __init__(self, token_lifetime=3600):
        self.lock = threading.Lock()
        self.token_lifetime = token_lifetime
        self.tokens = {}
        self.accounts = {}      # username -> {"username", "email", "is_active"}
        self.courses = {}       # course id -> [mode slugs]
        self.course_policy = {}  # course id -> {"invitation_only", "enrollment_start", "enrollment_end", "max"}
        self.enrollments = {}   # (username, course id) -> {"mode", "is_active"}
        self.allowances = {}    # (collation key of the email, course id) -> {"email", "course_id", "auto_enroll"}
        self.calls = []         # (method, path) of every API call
        self.token_requests = 0
        self.staff = True
        self.failures = []      # statuses to answer next, in order (e.g. [503, 503])
        self.throttle = None    # (count, retry_after): answer 429 to the next ``count`` calls
        self.delay = 0.0
        # Several accounts matching an ?email= lookup: "500" (what the LMS's code does) or "list" (all of them).
        self.several_accounts = "500"
        self.fail_paths = {}    # path prefix -> status answered to every call there (e.g. a 500 for one learner)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def add_account(self, email, active=True, username=None):
        username = username or email.split("@")[0].replace(".", "_")
        self.accounts[username] = {"username": username, "email": email, "is_active": active}

    def add_allowance(self, email, course_id, auto_enroll=True):
        self.allowances[(collation_key(email), course_id)] = {"email": email, "course_id": course_id,
                                                             "auto_enroll": auto_enroll, "user": None}

    def add_course(self, course_id, modes=("audit", "verified"), invitation_only=False, enrollment_start=None,
                   enrollment_end=None, max_student_enrollments_allowed=None):
        self.courses[course_id] = list(modes)
        self.course_policy[course_id] = {"invitation_only": invitation_only, "enrollment_start": enrollment_start,
                                         "enrollment_end": enrollment_end, "max": max_student_enrollments_allowed}

    def can_enroll(self, account, course_id):
        """The LMS's _can_enroll_courselike for the learner: an allowance, else invitation and window."""
        allowance = self.allowances.get((collation_key(account["email"]), course_id))
        if allowance:
            return allowance.get("user") in (None, account["username"])
        policy = self.course_policy.get(course_id, {})
        if policy.get("invitation_only"):
            return False
        now = datetime.now(UTC)
        start, end = policy.get("enrollment_start"), policy.get("enrollment_end")
        return (start is None or start < now) and (end is None or now < end)

    def is_full(self, course_id):
        limit = self.course_policy.get(course_id, {}).get("max")
        active = sum(1 for (_, course), e in self.enrollments.items() if course == course_id and e["is_active"])
        return limit is not None and active >= limit

    def revoke_tokens(self):
        self.tokens.clear()

    def api_calls(self, prefix=""):
        return [call for call in self.calls if call[1].startswith(prefix)]

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body writes

            def log_message(self, *args):  # keep the test output quiet
                return

            def reply(self, status, body=None, headers=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self):
                self.route("GET")

            def do_POST(self):
                self.route("POST")

            def do_DELETE(self):
                self.route("DELETE")

            def route(self, method):  # pylint: disable=too-many-return-statements,too-many-branches
                url = urlsplit(self.path)
                path, query = url.path, parse_qs(url.query)
                raw = self.body()
                if path == "/oauth2/access_token" and method == "POST":
                    return self.token(parse_qs(raw.decode()))
                with fake.lock:
                    fake.calls.append((method, path))
                    if fake.delay:
                        time.sleep(fake.delay)
                    if fake.throttle and fake.throttle[0] > 0:
                        fake.throttle = (fake.throttle[0] - 1, fake.throttle[1])
                        return self.reply(429, {"detail": "Request was throttled."},
                                          {"Retry-After": str(fake.throttle[1])})
                    if fake.failures:
                        return self.reply(fake.failures.pop(0), {"detail": "injected failure"})
                    for prefix, status in fake.fail_paths.items():
                        if self.path.startswith(prefix):
                            return self.reply(status, {"detail": "injected failure"})
                    if not self.authorized():
                        return self.reply(401, {"error_code": "token_nonexistent"})
                    data = json.loads(raw) if raw else {}
                    return self.api(method, path, query, data)

            def token(self, form):
                if form.get("client_id") != [CLIENT_ID] or form.get("client_secret") != [CLIENT_SECRET]:
                    return self.reply(401, {"error": "invalid_client"})
                with fake.lock:
                    fake.token_requests += 1
                    # A JWT as the LMS issues them (there RS512 with the site's key; the client never checks it).
                    token = jwt.encode({"administrator": fake.staff, "preferred_username": "lms_bridge",
                                        "exp": int(time.time()) + fake.token_lifetime, "iat": int(time.time()),
                                        "scopes": ["read", "write"], "jti": secrets.token_hex(8)},
                                       "fake-openedx-signing-key-of-32-bytes!", algorithm="HS256")
                    fake.tokens[token] = time.monotonic() + fake.token_lifetime
                return self.reply(200, {"access_token": token, "expires_in": fake.token_lifetime, "token_type": "JWT",
                                        "scope": "read write"})

            def authorized(self):
                scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
                return scheme == "JWT" and fake.tokens.get(token, 0) > time.monotonic()

            def api(self, method, path, query, data):  # pylint: disable=too-many-return-statements,too-many-branches
                if path == "/api/user/v1/accounts" and method == "GET":
                    if not fake.staff:
                        return self.reply(403, {"detail": "You do not have permission."})
                    wanted = collation_key(query.get("email", [""])[0])
                    found = [a for a in fake.accounts.values() if collation_key(a["email"]) == wanted]
                    if len(found) > 1 and fake.several_accounts == "500":
                        return self.reply(500, {"detail": "MultipleObjectsReturned"})
                    return self.reply(200, found) if found else self.reply(404)
                if path.startswith("/api/enrollment/v1/course/") and method == "GET":
                    course_id = unquote(path[len("/api/enrollment/v1/course/"):])
                    if course_id not in fake.courses:
                        return self.reply(400, {"message": f"No course found for course ID '{course_id}'"})
                    policy = fake.course_policy.get(course_id, {})
                    return self.reply(200, {
                        "course_id": course_id,
                        "course_modes": [{"slug": slug, "name": slug} for slug in fake.courses[course_id]],
                        "invite_only": bool(policy.get("invitation_only")),
                        "enrollment_start": policy["enrollment_start"].isoformat() if policy.get(
                            "enrollment_start") else None,
                        "enrollment_end": policy["enrollment_end"].isoformat() if policy.get(
                            "enrollment_end") else None,
                    })
                if path.startswith("/api/enrollment/v1/enrollment/") and method == "GET":
                    if not fake.staff:
                        return self.reply(404)
                    username, _, course_id = unquote(path[len("/api/enrollment/v1/enrollment/"):]).partition(",")
                    enrollment = fake.enrollments.get((username, course_id))
                    return self.reply(200, {**enrollment, "user": username, "course_details": {
                        "course_id": course_id}}) if enrollment else self.reply(200)
                if path == "/api/enrollment/v1/enrollment" and method == "POST":
                    return self.enroll(data)
                if path == "/api/enrollment/v1/enrollment_allowed/":
                    if not fake.staff:
                        return self.reply(403, {"detail": "You do not have permission."})
                    return self.allowance(method, query, data)
                return self.reply(404)

            def enroll(self, data):
                course_id = (data.get("course_details") or {}).get("course_id")
                if course_id not in fake.courses:
                    return self.reply(400, {"message": f"No course '{course_id}' found for enrollment"})
                mode = data.get("mode") or "audit"
                if mode not in fake.courses[course_id]:
                    return self.reply(400, {"message": f"The [{mode}] course mode is not available"})
                if mode != "audit" and not fake.staff:
                    return self.reply(403, {"detail": "User does not have permission"})
                username = data.get("user")
                if username not in fake.accounts:
                    return self.reply(406, {"message": f"The user {username} does not exist."})
                current = fake.enrollments.get((username, course_id))
                if current is None:
                    # A new enrollment: enroll(check_access=True, can_upgrade=force_enrollment).
                    force = data.get("force_enrollment") is True and fake.staff
                    closed = not fake.can_enroll(fake.accounts[username], course_id) and not force
                    if closed or fake.is_full(course_id):
                        return self.reply(400, {"message": "An error occurred while creating the new course "
                                                           f"enrollment for user '{username}' in course '{course_id}'"})
                is_active = data.get("is_active", True)
                if not is_active and current and current["mode"] != mode:
                    return self.reply(400, {"message": "Enrollment mode mismatch"})
                fake.enrollments[(username, course_id)] = {"mode": mode, "is_active": is_active}
                return self.reply(200, {"mode": mode, "is_active": is_active, "user": username,
                                        "course_details": {"course_id": course_id}})

            def allowance(self, method, query, data):
                if method == "GET":
                    email = collation_key(query.get("email", [""])[0])
                    return self.reply(200, [a for (e, _), a in fake.allowances.items() if e == email])
                key = (collation_key(data.get("email") or ""), data.get("course_id"))
                if method == "POST":
                    if key in fake.allowances:
                        return self.reply(409, {"message": "An enrollment allowed with those values already exists."})
                    fake.allowances[key] = {"email": data["email"], "course_id": data["course_id"],
                                            "auto_enroll": bool(data.get("auto_enroll")), "user": None}
                    return self.reply(201, fake.allowances[key])
                if key in fake.allowances:
                    del fake.allowances[key]
                    return self.reply(204)
                return self.reply(404)

        return Handler
