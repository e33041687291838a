"""
The benchmark (``make bench``): speed, SQL queries and memory, printed as a table.

    python -m tests.tools.bench queries          # SQL queries per delivery, in-process (SQLite or MariaDB)
    python -m tests.tools.bench server           # gunicorn on MariaDB: rates, latencies, worker memory
    python -m tests.tools.bench async            # async acks (gunicorn, Redis), bulk deliveries on Celery workers
    python -m tests.tools.bench acks             # only the async acks

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
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DB = "lms_bridge_bench"
COURSES = [f"course-v1:Bench+C{n:03d}+2026" for n in range(100)]
RESULTS = []
# The "name: value" lines an issue asks for, printed after the table by ``report``.
LINES = {}
# The async acknowledgement's load: requests per round of each kind, in ACK_ROUNDS rounds
# (short rounds, so that this VM's drifting speed weighs on every kind alike), after
# ACK_WARM_UP requests of each kind that are not counted.
ACK_ROUNDS = 8
ACK_REQUESTS = {"empty": 400, 1: 250, 100: 125}
ACK_WARM_UP = 200
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")


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


class CommitCounter:
    """Counts commits: transactions committed, and writes run in autocommit mode (each its own commit)."""

    def __init__(self, connection):
        self.connection = connection
        self.commits = 0
        self.statements = []

    def __call__(self, execute, sql, params, many, context):
        text = sql.strip().upper()
        if not text.startswith(TRANSACTION_CONTROL):
            self.statements.append(sql)
            if self.connection.get_autocommit() and not text.startswith("SELECT"):
                self.commits += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        original = self.connection.commit

        def counted_commit():
            self.commits += 1
            return original()

        self._original = original
        self.connection.commit = counted_commit
        self._wrapper = self.connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)
        self.connection.commit = self._original


def queries():
    """SQL statements and commits per delivery against the number of courses, first enrollment and repeat."""
    # pylint: disable=import-outside-toplevel
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    setup_django(BENCH_DB)
    seed(users=10)
    client = Client()
    vendor = connection.vendor
    rows = {}
    commits = {}
    for count in (1, 10, 100):
        for attempt in ("first", "repeat"):
            body, headers = signed_request({"email": f"bench{count % 10}@example.com", "courseIds": COURSES[:count]})
            with CaptureQueriesContext(connection), CommitCounter(connection) as counter:
                response = client.post("/api/lms-bridge/v1/webhooks/shop/", data=body, content_type="application/json",
                                       headers=headers)
            assert response.status_code == 200, response.content
            rows[(count, attempt)] = len(counter.statements)
            commits[(count, attempt)] = counter.commits
            report(f"queries/{vendor}", f"{attempt} delivery, {count} course(s): statements / commits",
                   f"{rows[(count, attempt)]} / {counter.commits}", "commits <= 2")
    for attempt in ("first", "repeat"):
        slope = (rows[(100, attempt)] - rows[(1, attempt)]) / 99
        fixed = rows[(1, attempt)] - slope
        report(f"queries/{vendor}", f"{attempt}: statements fixed + per course", f"{fixed:.0f} + {slope:.1f}/course",
               "<= 10 + <= 1/course" if attempt == "repeat" else "")
    if vendor == "mysql":
        LINES["sync-enrolled-statements-1-course"] = rows[(1, "repeat")]
        extra = (rows[(100, "repeat")] - rows[(1, "repeat")]) / 99
        LINES["sync-enrolled-statements-per-extra-course"] = round(extra, 2)
        LINES["commits-per-delivery-10-courses"] = commits[(10, "first")]
    else:
        remote_calls()  # the same on every database: measured once


def remote_calls():
    """HTTP calls per pair of the remote backend (a fake Open edX on 127.0.0.1), new and already enrolled."""
    # pylint: disable=import-outside-toplevel
    from django.test import Client, override_settings

    from lms_bridge import registry
    from tests.fake_openedx import CLIENT_ID, CLIENT_SECRET, FakeOpenEdx

    site = FakeOpenEdx()
    try:
        for course_id in COURSES[:10]:
            site.add_course(course_id)
        site.add_account("remote@example.com")
        backends = [{"BACKEND": "lms_bridge.backends.openedx_api.OpenEdxApiBackend", "BASE_URL": site.url,
                     "OPTIONS": {"CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET}}]
        with override_settings(LMS_BRIDGE_BACKENDS=backends):
            registry.reset()
            client = Client()
            for attempt in ("new", "already enrolled"):
                body, headers = signed_request({"email": "remote@example.com", "courseIds": COURSES[:10]})
                before = len(site.calls)
                response = client.post("/api/lms-bridge/v1/webhooks/shop/", data=body,
                                       content_type="application/json", headers=headers)
                assert response.status_code == 200, response.content
                report("remote", f"HTTP calls per pair, 1 learner x 10 courses, {attempt}",
                       f"{(len(site.calls) - before) / 10:.1f}")
        registry.reset()
    finally:
        site.stop()


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


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def async_bench(bulk=True):
    """Async acks against the empty endpoint (gunicorn, Redis), and bulk deliveries on 1 and 2 Celery workers."""
    setup_django(BENCH_DB)
    # pylint: disable=import-outside-toplevel
    from common.djangoapps.student.models import CourseEnrollment
    from django.contrib.auth import get_user_model

    from lms_bridge.models import DeliveryStatus, WebhookDelivery
    from tests.live import CeleryWorker, LiveServer, wait_until
    from tests.tools.redis import RedisServer

    seed(users=10_000)
    learners = list(get_user_model().objects.filter(username__startswith="bench").values_list("email", flat=True))
    with RedisServer() as redis:
        env = {"LMS_BRIDGE_TEST_REDIS_URL": redis.url}
        server = LiveServer(BENCH_DB, workers=4, extra_env=env)
        try:
            empty = lambda n: ("POST", "/sandbox/empty/", b"{}", {"Content-Type": "application/json"})  # noqa: E731
            # Signed beforehand: what is measured is the receiver, not the sender's signing.
            acks = {count: [("POST", "/api/lms-bridge/v1/webhooks/shop-async/",
                             *signed_request({"email": learners[number % len(learners)], "courseIds": COURSES[:count]},
                                             source="shop-async"))
                            for number in range(ACK_WARM_UP + ACK_ROUNDS * ACK_REQUESTS[count])]
                    for count in (1, 100)}
            # Every kind warmed up alike (each worker's first requests import, connect, fill its caches).
            run_load(server, empty, ACK_WARM_UP, 8, 30)
            for count in (1, 100):
                run_load(server, lambda n, count=count: acks[count][n - 1], ACK_WARM_UP, 8, 30)
            # Rounds of each kind in turn, so that a machine that slows down meanwhile
            # (a shared VM) weighs on both sides of the ratio alike.
            elapsed, done = Counter(), Counter()
            for round_number in range(ACK_ROUNDS):
                for kind, total in (("empty", ACK_REQUESTS["empty"]), (1, ACK_REQUESTS[1]), (100, ACK_REQUESTS[100])):
                    offset = ACK_WARM_UP + round_number * total
                    make = empty if kind == "empty" else (
                        lambda n, kind=kind, offset=offset: acks[kind][offset + n - 1])
                    rate, statuses = run_load(server, make, total, 8, 60)
                    assert set(statuses) == ({200} if kind == "empty" else {202}), set(statuses)
                    elapsed[kind] += len(statuses) / rate
                    done[kind] += len(statuses)
            empty_rate = done["empty"] / elapsed["empty"]
            report("async", "empty DRF endpoint (requests/s, 8 client threads)", f"{empty_rate:.0f}")
            for count in (1, 100):
                rate = done[count] / elapsed[count]
                latencies = []
                for number in range(200):
                    body, headers = signed_request({"email": learners[(number + 5000) % len(learners)],
                                                    "courseIds": COURSES[:count]}, source="shop-async")
                    started = time.monotonic()
                    status, _, _ = server.request("POST", "/api/lms-bridge/v1/webhooks/shop-async/", body=body,
                                                  headers=headers)
                    latencies.append((time.monotonic() - started) * 1000)
                    assert status == 202, status
                p99 = percentile(latencies, 0.99)
                report("async", f"ack, {count} course(s): deliveries/s / ratio to empty",
                       f"{rate:.0f} / {rate / empty_rate:.2f}", ">= 0.50")
                report("async", f"ack, {count} course(s): median / p99 (ms, sequential)",
                       f"{statistics.median(latencies):.1f} / {p99:.1f}", "p99 <= 50")
                if count == 1:
                    LINES["async-ack-ratio"] = round(rate / empty_rate, 2)
                    LINES["async-ack-p99-ms"] = round(p99, 1)
                else:
                    LINES["async-ack-p99-ms"] = max(LINES["async-ack-p99-ms"], round(p99, 1))
            if not bulk:
                return
            # The acks above queued work nobody needs: start the bulk runs on an empty broker and database.
            WebhookDelivery.objects.all().delete()
            CourseEnrollment.objects.all().delete()
            redis.flush()
            for pairs, workers in ((1000, 1), (1000, 2), (10_000, 1), (10_000, 2)):
                CourseEnrollment.objects.all().delete()
                started_workers = [CeleryWorker(BENCH_DB, f"bench{n}", extra_env=env) for n in range(workers)]
                try:
                    per_course = pairs // 10
                    body, headers = signed_request({"learners": [{"email": email} for email in learners[:per_course]],
                                                    "courseIds": COURSES[:10]}, source="cohorts-async")
                    started = time.monotonic()
                    status, _, reply = server.request("POST", "/api/lms-bridge/v1/webhooks/cohorts-async/",
                                                      body=body, headers=headers)
                    assert status == 202, reply
                    uuid = json.loads(reply)["delivery"]
                    done = wait_until(lambda uuid=uuid: WebhookDelivery.objects.filter(
                        uuid=uuid, status=DeliveryStatus.PROCESSED).exists(), 600, interval=0.2)
                    elapsed = time.monotonic() - started
                    assert done, "the bulk delivery did not finish"
                    report("bulk", f"{pairs} new pairs, {workers} worker(s): seconds / ms per pair",
                           f"{elapsed:.1f} / {elapsed / pairs * 1000:.2f}", "10,000 on 2: <= 60 s")
                    if (pairs, workers) == (10_000, 2):
                        LINES["bulk-10000-pairs-seconds-2-workers"] = round(elapsed, 1)
                finally:
                    for worker in started_workers:
                        worker.stop()
        finally:
            server.stop()


def report_lines(json_path):
    """Print the issue's "name: value" lines after the table, and write docs/performance.rst from every run."""
    rows, lines = [], {}
    with open(json_path, encoding="utf-8") as handle:
        for line in handle:
            run = json.loads(line)
            rows.extend(run["results"])
            lines.update(run["lines"])
    table = ["   * - part", "     - measure", "     - value", "     - target"]
    for section, name, value, target in rows:
        table += [f"   * - {section}", f"     - {name}", f"     - {value}", f"     - {target}".rstrip()]
    docs = ROOT / "docs" / "performance.rst"
    generated = GENERATED.format(machine=f"{platform.machine()}, {os.cpu_count()} cores, Python "
                                         f"{platform.python_version()}", table="\n".join(table),
                                 lines="\n".join(f"    {k}: {v}" for k, v in lines.items()))
    text = docs.read_text(encoding="utf-8") if docs.exists() else "Performance\n###########\n\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + generated + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + generated + "\n"
    docs.write_text(text, encoding="utf-8")
    for name, value in lines.items():
        print(f"{name}: {value}")


BEGIN = ".. The table below is written by make bench (tests/tools/bench.py report): begin"
END = ".. make bench: end"
GENERATED = BEGIN + """

Measured by ``make bench`` on {machine}: the stand-in LMS on SQLite and MariaDB,
gunicorn with 4 workers, Redis and real Celery worker processes on the same machine.

.. list-table::
   :header-rows: 1

{table}

The lines the pipeline issue asks for, to compare runs::

{lines}

""" + END


def main(argv):
    """Run the parts named in ``argv``."""
    if argv == ["report"]:
        report_lines(os.environ["LMS_BRIDGE_BENCH_JSON"])
        return
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}", flush=True)
    print(f"| {'part':<10} | {'measure':<58} | {'value':>16} | {'target':<22} |")
    print(f"|{'-' * 12}|{'-' * 60}|{'-' * 18}|{'-' * 24}|")
    if "queries" in argv:
        queries()
    if "server" in argv:
        server_bench()
    if "async" in argv:
        async_bench()
    elif "acks" in argv:
        async_bench(bulk=False)
    out = os.environ.get("LMS_BRIDGE_BENCH_JSON")
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"results": RESULTS, "lines": LINES}) + "\n")
    if "report" in argv:
        report_lines(out)


if __name__ == "__main__":
    main(sys.argv[1:])
