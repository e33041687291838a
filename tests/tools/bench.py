"""
The benchmark (``make bench``): speed, SQL queries and memory, printed as a table.

    python -m tests.tools.bench queries          # SQL queries per delivery, in-process (SQLite or MariaDB)
    python -m tests.tools.bench server           # gunicorn on MariaDB: rates, latencies, worker memory

``make bench`` runs ``queries`` on SQLite, then both on a throwaway MariaDB
server (tests/tools/mariadb.py). Every loop is bounded in requests and time.
"""
import json
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DB = "lms_bridge_bench"
COURSES = [f"course-v1:Bench+C{n:03d}+2026" for n in range(100)]
RESULTS = []


def report(section, name, value, target=""):
    """Print one line of the table and keep it."""
    RESULTS.append((section, name, value, target))
    print(f"| {section:<10} | {name:<58} | {value:>16} | {target:<22} |", flush=True)


def setup_django(database_name=None):
    """Configure Django with the test settings (MariaDB when the wrapper provides one)."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    if database_name and os.environ.get("LMS_BRIDGE_TEST_MYSQL_PORT"):
        import MySQLdb  # pylint: disable=import-outside-toplevel,import-error

        admin = MySQLdb.connect(host=os.environ["LMS_BRIDGE_TEST_MYSQL_HOST"],
                                port=int(os.environ["LMS_BRIDGE_TEST_MYSQL_PORT"]),
                                user=os.environ["LMS_BRIDGE_TEST_MYSQL_USER"],
                                password=os.environ["LMS_BRIDGE_TEST_MYSQL_PASSWORD"])
        admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {database_name} "
                               "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        admin.close()
        os.environ["LMS_BRIDGE_TEST_MYSQL_NAME"] = database_name
    import django  # pylint: disable=import-outside-toplevel
    from django.core.management import call_command  # pylint: disable=import-outside-toplevel

    django.setup()
    call_command("migrate", verbosity=0)


def seed(users=0):
    """Create the 100 bench courses and ``users`` active learners."""
    # pylint: disable=import-outside-toplevel
    from django.contrib.auth import get_user_model

    from tests.conftest import make_course

    for course_id in COURSES:
        make_course(course_id, ("audit", "verified"))
    user_model = get_user_model()
    existing = set(user_model.objects.filter(username__startswith="bench").values_list("username", flat=True))
    from common.djangoapps.student.models import UserProfile

    created = user_model.objects.bulk_create([
        user_model(username=f"bench{n}", email=f"bench{n}@example.com", is_active=True)
        for n in range(users) if f"bench{n}" not in existing
    ])
    # bulk_create sends no post_save: give the learners the profile registration gives them.
    UserProfile.objects.bulk_create([UserProfile(user=user, name=user.username) for user in created
                                     if user.pk is not None], ignore_conflicts=True)


def signed_request(payload, source="shop"):
    """(body, headers) of a signed delivery with a fresh id."""
    from tests.signing import body_bytes, sign_for  # pylint: disable=import-outside-toplevel

    body = body_bytes(payload)
    return body, {"Content-Type": "application/json", **sign_for(source, body)}


def queries():
    """SQL queries per delivery against the number of courses, first enrollment and repeat."""
    # pylint: disable=import-outside-toplevel
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    setup_django(BENCH_DB)
    seed(users=10)
    client = Client()
    vendor = connection.vendor
    rows = {}
    for count in (1, 10, 100):
        for attempt in ("first", "repeat"):
            body, headers = signed_request({"email": f"bench{count % 10}@example.com", "courseIds": COURSES[:count]})
            with CaptureQueriesContext(connection) as captured:
                response = client.post("/api/lms-bridge/v1/webhooks/shop/", data=body, content_type="application/json",
                                       headers=headers)
            assert response.status_code == 200, response.content
            rows[(count, attempt)] = len(captured.captured_queries)
            report(f"queries/{vendor}", f"{attempt} delivery, {count} course(s) (enroll existing learner)",
                   rows[(count, attempt)])
    for attempt in ("first", "repeat"):
        slope = (rows[(100, attempt)] - rows[(1, attempt)]) / 99
        fixed = rows[(1, attempt)] - slope
        report(f"queries/{vendor}", f"{attempt}: fixed + per course", f"{fixed:.0f} + {slope:.1f}/course",
               "fixed + <= 3/course")


def run_load(server, make_request, total, threads, seconds):
    """Send up to ``total`` requests from ``threads`` threads for at most ``seconds``; return (rate, statuses)."""
    lock = threading.Lock()
    state = {"sent": 0}
    statuses = []
    deadline = time.monotonic() + seconds

    def worker():
        while time.monotonic() < deadline:
            with lock:
                if state["sent"] >= total:
                    return
                state["sent"] += 1
                number = state["sent"]
            method, path, body, headers = make_request(number)
            status, _, _ = server.request(method, path, body=body, headers=headers)
            with lock:
                statuses.append(status)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(threads):
            pool.submit(worker)
    elapsed = time.monotonic() - started
    return len(statuses) / elapsed, statuses


def worker_peak_rss(server):
    """The largest peak resident memory (VmHWM, MiB) among the gunicorn workers."""
    peaks = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        if f"PPid:\t{server.process.pid}\n" in status:
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks) if peaks else float("nan")


def server_bench():
    """Rates, latencies and memory against gunicorn (4 workers) on MariaDB."""
    from tests.live import LiveServer  # pylint: disable=import-outside-toplevel

    setup_django(BENCH_DB)
    seed(users=3000)
    server = LiveServer(BENCH_DB, workers=4)
    try:
        url = "/api/lms-bridge/v1/webhooks/shop/"
        empty = lambda n: ("POST", "/sandbox/empty/", b"{}", {"Content-Type": "application/json"})  # noqa: E731
        run_load(server, empty, 200, 8, 30)  # warm up every worker
        empty_rate, statuses = run_load(server, empty, 3000, 8, 60)
        assert set(statuses) == {200}, set(statuses)

        def webhook(number):
            body, headers = signed_request({"email": f"bench{number % 3000}@example.com", "courseIds": [COURSES[0]]})
            return "POST", url, body, headers

        webhook_rate, statuses = run_load(server, webhook, 3000, 8, 60)
        assert set(statuses) == {200}, set(statuses)
        report("rate", "empty DRF endpoint (requests/s, 8 client threads)", f"{empty_rate:.0f}")
        report("rate", "signed 1-course webhook (deliveries/s, 8 client threads)", f"{webhook_rate:.0f}")
        report("rate", "webhook / empty endpoint", f"{webhook_rate / empty_rate:.2f}", ">= 0.50")

        for count, samples in ((1, 200), (10, 100), (100, 30)):
            latencies = []
            for number in range(samples):
                body, headers = signed_request({"email": f"bench{(number * 7 + count) % 3000}@example.com",
                                                "courseIds": COURSES[:count]})
                started = time.monotonic()
                status, _, _ = server.request("POST", url, body=body, headers=headers)
                latencies.append((time.monotonic() - started) * 1000)
                assert status == 200, status
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            report("latency", f"{count} course(s): median / p99 (ms, {samples} sequential deliveries)",
                   f"{statistics.median(latencies):.1f} / {p99:.1f}")

        before = worker_peak_rss(server)
        pad = 1024 * 1024 - 200
        for number in range(20):
            payload = {"email": f"bench{number}@example.com", "courseIds": [COURSES[1]], "pad": "x" * pad}
            body, headers = signed_request(payload)
            body = body[:1024 * 1024]  # stay within the cap whatever the JSON overhead
            if not body.endswith(b"}"):
                body, headers = signed_request({**payload, "pad": "x" * (pad - (len(body) - 1024 * 1024) - 200)})
            status, _, _ = server.request("POST", url, body=body, headers=headers)
            assert status == 200, status
        after = worker_peak_rss(server)
        report("memory", "worker peak RSS before / after 20 bodies at the 1 MiB cap (MiB)",
               f"{before:.0f} / {after:.0f}")
    finally:
        server.stop()


def main(argv):
    """Run the parts named in ``argv``."""
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}", flush=True)
    print(f"| {'part':<10} | {'measure':<58} | {'value':>16} | {'target':<22} |")
    print(f"|{'-' * 12}|{'-' * 60}|{'-' * 18}|{'-' * 24}|")
    if "queries" in argv:
        queries()
    if "server" in argv:
        server_bench()
    out = os.environ.get("LMS_BRIDGE_BENCH_JSON")
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(RESULTS) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
