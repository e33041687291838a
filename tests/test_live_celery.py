"""
Async mode on real parts: gunicorn and real Celery worker processes (prefork) on
MariaDB, with a real Redis broker (Debian's redis-server on 127.0.0.1).

Every wait is bounded; a test that times out prints what the workers logged.
"""
import json
import os
import subprocess
import sys
import time

import pytest
from common.djangoapps.student.models import CourseEnrollment, ManualEnrollmentAudit, UserProfile
from django.contrib.auth import get_user_model
from django.db import connection

from lms_bridge import tasks
from lms_bridge.models import SUCCESSFUL_OUTCOMES, DeliveryChunk, DeliveryStatus, EnrollmentOperation, WebhookDelivery

from .conftest import make_course
from .fake_openedx import CLIENT_ID, CLIENT_SECRET, FakeOpenEdx
from .live import ROOT, CeleryWorker, LiveServer, wait_until
from .signing import WEBHOOK_URL, body_bytes, sign_for
from .tools.redis import RedisServer, find_redis_server

pytestmark = [pytest.mark.django_db(transaction=True)]

COURSES = [f"course-v1:Cel+C{n}+2026" for n in range(10)]


@pytest.fixture(scope="module")
def redis_server():
    if find_redis_server() is None:
        pytest.skip("needs Debian's redis-server (make test installs it)")
    with RedisServer() as server:
        yield server


class Stack:
    """gunicorn, and the means to start workers, all on the test database and one Redis."""

    def __init__(self, redis_server, extra_env=None):
        self.redis = redis_server
        self.env = {"LMS_BRIDGE_TEST_REDIS_URL": redis_server.url, "LMS_BRIDGE_TEST_VISIBILITY_TIMEOUT": "5",
                    "LMS_BRIDGE_TEST_LEASE_SECONDS": "5", "LMS_BRIDGE_TEST_BACKOFF_SECONDS": "1", **(extra_env or {})}
        self.database = connection.settings_dict["NAME"]
        # Whatever a previous test left in the broker is not this test's work.
        redis_server.flush()
        self.web = LiveServer(self.database, workers=2, extra_env=self.env)
        self.workers = []

    def worker(self, name):
        worker = CeleryWorker(self.database, name, extra_env=self.env)
        self.workers.append(worker)
        return worker

    def sweep(self):
        """Run the sweeper as cron would: a fresh ``manage.py lms_bridge_sweep`` process."""
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "LMS_BRIDGE_TEST_MYSQL_NAME": self.database,
               **self.env}
        done = subprocess.run([sys.executable, "manage.py", "lms_bridge_sweep", "--older-than", "0", "--progress"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def logs(self):
        return "\n".join(worker.output()[-4000:] for worker in self.workers if worker.process.poll() is None)

    def stop(self):
        for worker in self.workers:
            worker.stop()
        self.web.stop()


def needs_mariadb():
    if connection.vendor != "mysql":
        pytest.skip("the Celery tests need MariaDB shared between processes (make test runs them)")


@pytest.fixture
def stack(redis_server, request):
    needs_mariadb()
    running = Stack(redis_server, getattr(request, "param", None))
    yield running
    running.stop()


def learners(count, prefix="celery"):
    """Active learners with profiles, made in bulk."""
    user_model = get_user_model()
    users = user_model.objects.bulk_create([
        user_model(username=f"{prefix}{n}", email=f"{prefix}{n}@example.com", is_active=True) for n in range(count)
    ])
    users = list(user_model.objects.filter(username__startswith=prefix))
    UserProfile.objects.bulk_create([UserProfile(user=user, name=user.username) for user in users])
    return users


def post(server, payload, source="cohorts-async", event_id=None):
    body = body_bytes(payload)
    status, _, reply = server.request("POST", WEBHOOK_URL.format(source=source), body=body,
                                      headers={"Content-Type": "application/json",
                                               **sign_for(source, body, event_id=event_id)})
    return status, json.loads(reply or b"null")


def settled(expected):
    """All ``expected`` deliveries are done (no received or processing left)."""
    done = WebhookDelivery.objects.filter(signature_valid=True).exclude(
        status__in=(DeliveryStatus.RECEIVED, DeliveryStatus.PROCESSING)).count()
    return done >= expected


def test_200_async_deliveries_are_each_processed_once(stack):
    """Expected behavior: 200 x 202, then every delivery processed, each learner enrolled exactly once."""
    make_course(COURSES[0])
    users = learners(200)
    stack.worker("w1")
    stack.worker("w2")
    statuses = [post(stack.web, {"learners": [{"email": user.email}], "courseIds": [COURSES[0]]})[0]
                for user in users]
    assert statuses == [202] * 200
    assert wait_until(lambda: settled(200), 120), stack.logs()
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PROCESSED).count() == 200
    assert CourseEnrollment.objects.filter(course_id=COURSES[0], is_active=True).count() == 200
    assert ManualEnrollmentAudit.objects.count() == 200
    assert EnrollmentOperation.objects.filter(outcome="enrolled").count() == 200


@pytest.mark.parametrize("stack", [{"LMS_BRIDGE_TEST_CHUNK_PAIRS": "300"}], indirect=True)
def test_a_worker_killed_mid_batch_loses_and_repeats_nothing(stack):
    """Expected behavior: SIGKILL while a chunk is half done; a new worker completes it, no duplicate effect."""
    for course in COURSES[:3]:
        make_course(course)
    users = learners(1000)
    worker = stack.worker("doomed")
    status, reply = post(stack.web, {"learners": [{"email": user.email} for user in users],
                                     "courseIds": COURSES[:3]})
    assert status == 202, reply
    delivery = WebhookDelivery.objects.get(uuid=reply["delivery"])
    total = 3000

    def some_done():
        done = EnrollmentOperation.objects.filter(delivery=delivery, outcome="enrolled").count()
        return 0 < done < total - 600 and done

    assert wait_until(some_done, 120, interval=0.05), stack.logs()
    worker.kill()
    half = EnrollmentOperation.objects.filter(delivery=delivery, outcome="enrolled").count()
    assert half < total
    stack.worker("replacement")
    # The other chunks go on on the replacement; the killed one's lease expires and the
    # sweeper (as beat would) queues that chunk again, without waiting for Redis to redeliver.
    time.sleep(6)
    stack.sweep()
    assert wait_until(lambda: settled(1), 180), stack.logs()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED, (delivery.status, delivery.response_body)
    assert EnrollmentOperation.objects.filter(delivery=delivery).count() == total
    assert EnrollmentOperation.objects.filter(delivery=delivery, outcome="enrolled").count() == total
    assert CourseEnrollment.objects.filter(is_active=True).count() == total
    assert ManualEnrollmentAudit.objects.count() == total
    assert not DeliveryChunk.objects.filter(delivery=delivery).exclude(status="done").exists()


def test_deliveries_while_redis_is_down_are_kept_and_swept(stack):
    """
    Expected behavior: broker down -> 202 and recorded; broker back -> the web workers queue new
    deliveries again at once (no sweeper needed), and the sweeper queues those kept meanwhile.
    """
    make_course(COURSES[0])
    users = learners(28)
    stack.worker("w1")
    stack.redis.stop()
    try:
        replies = [post(stack.web, {"learners": [{"email": user.email}], "courseIds": [COURSES[0]]})
                   for user in users[:20]]
    finally:
        stack.redis.start()
    assert [status for status, _ in replies] == [202] * 20
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).count() == 20
    after = [post(stack.web, {"learners": [{"email": user.email}], "courseIds": [COURSES[0]]})
             for user in users[20:]]
    assert [status for status, _ in after] == [202] * 8
    uuids = [reply["delivery"] for _, reply in after]
    assert wait_until(lambda: WebhookDelivery.objects.filter(uuid__in=uuids, status=DeliveryStatus.PROCESSED)
                      .count() == 8, 120), stack.logs()
    output = stack.sweep()
    assert "queued: 20" in output, output
    assert wait_until(lambda: settled(28), 120), stack.logs()
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PROCESSED).count() == 28
    assert CourseEnrollment.objects.filter(is_active=True).count() == 28


def test_a_channel_given_the_shared_publish_client_still_does_all_a_redis_channel_does(redis_server):
    """
    Expected behavior: the web worker's publishing channel (one redis-py client for all its
    messages, in place of kombu's one per message) declares, publishes, counts, reads, purges and
    deletes as kombu's own channel does, on a real Redis. (The live tests above run it in place.)
    """
    # pylint: disable=import-outside-toplevel
    from kombu import Connection, Exchange, Producer, Queue
    from kombu.exceptions import ChannelError

    redis_server.flush()
    with Connection(redis_server.url) as broker:
        channel = broker.channel()
        tasks._share_publish_client(channel)  # pylint: disable=protected-access
        assert "conn_or_acquire" in vars(channel)
        queue = Queue("lms-bridge-probe", Exchange("lms-bridge-probe"), routing_key="lms-bridge-probe")(channel)
        producer = Producer(channel)
        for number in (1, 2, 3):
            producer.publish({"n": number}, exchange=queue.exchange, routing_key="lms-bridge-probe", declare=[queue])
        assert queue.queue_declare(passive=True).message_count == 3
        message = queue.get(no_ack=True)
        assert message.payload == {"n": 1}
        assert queue.purge() == 2
        queue.delete()
        with pytest.raises(ChannelError):  # gone
            queue.queue_declare(passive=True)


def test_a_broker_restart_between_deliveries_leaves_nothing_for_the_sweeper(stack):
    """
    Expected behavior: the web workers keep their broker connection between deliveries; when Redis
    restarts in between, the next deliveries are still queued at once (the connection is made
    again), so all are processed with no sweeper run.
    """
    make_course(COURSES[0])
    users = learners(16)
    stack.worker("w1")
    before = [post(stack.web, {"learners": [{"email": user.email}], "courseIds": [COURSES[0]]})[0]
              for user in users[:8]]
    assert before == [202] * 8
    assert wait_until(lambda: settled(8), 120), stack.logs()
    stack.redis.stop()
    stack.redis.start()
    after = [post(stack.web, {"learners": [{"email": user.email}], "courseIds": [COURSES[0]]})[0]
             for user in users[8:]]
    assert after == [202] * 8
    assert wait_until(lambda: settled(16), 120), stack.logs()
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PROCESSED).count() == 16
    assert CourseEnrollment.objects.filter(is_active=True).count() == 16


@pytest.fixture
def remote_lms():
    site = FakeOpenEdx()
    yield site
    site.stop()


def test_a_transiently_failing_lms_is_retried_with_backoff_until_it_recovers(redis_server, remote_lms):
    """Expected behavior: the LMS answers 503 for a while -> tasks retry (backoff) -> all enrolled."""
    needs_mariadb()
    remote_lms.add_course(COURSES[0])
    for n in range(5):
        remote_lms.add_account(f"remote{n}@example.com")
    backends = [{"BACKEND": "lms_bridge.backends.openedx_api.OpenEdxApiBackend", "BASE_URL": remote_lms.url,
                 "OPTIONS": {"CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, "MAX_ATTEMPTS": 1}}]
    live = Stack(redis_server, {"LMS_BRIDGE_TEST_BACKENDS": json.dumps(backends)})
    try:
        live.worker("w1")
        remote_lms.fail_paths["/api/enrollment/v1/enrollment"] = 503
        replies = [post(live.web, {"learners": [{"email": f"remote{n}@example.com"}], "courseIds": [COURSES[0]]})
                   for n in range(5)]
        assert [status for status, _ in replies] == [202] * 5, replies
        assert wait_until(lambda: DeliveryChunk.objects.filter(attempts__gte=2).count() >= 5, 60), live.logs()
        assert not EnrollmentOperation.objects.filter(outcome__in=SUCCESSFUL_OUTCOMES).exists()
        assert EnrollmentOperation.objects.filter(outcome="retry").count() == 5
        del remote_lms.fail_paths["/api/enrollment/v1/enrollment"]
        assert wait_until(lambda: settled(5), 120), live.logs()
        assert EnrollmentOperation.objects.filter(outcome="enrolled").count() == 5
        assert all(remote_lms.enrollments.get((f"remote{n}", COURSES[0]), {}).get("is_active") for n in range(5))
    finally:
        live.stop()


def test_10000_pairs_on_2_workers_each_recorded_once(stack):
    """Expected behavior: a 10,000-pair bulk delivery shared by 2 workers: 10,000 outcomes, counts right."""
    for course in COURSES:
        make_course(course)
    users = learners(1000)
    stack.worker("w1")
    stack.worker("w2")
    status, reply = post(stack.web, {"learners": [{"email": user.email} for user in users], "courseIds": COURSES})
    assert status == 202, reply
    delivery = WebhookDelivery.objects.get(uuid=reply["delivery"])
    assert wait_until(lambda: settled(1), 300, interval=1), stack.logs()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED, delivery.response_body
    assert delivery.response_body["counts"] == {"enrolled": 10_000}
    assert EnrollmentOperation.objects.filter(delivery=delivery).count() == 10_000
    assert CourseEnrollment.objects.filter(is_active=True).count() == 10_000
    assert ManualEnrollmentAudit.objects.count() == 10_000
    # Chunks of the default 250 pairs.
    assert DeliveryChunk.objects.filter(delivery=delivery, status="done").count() == 40
    # Each chunk names the Celery task that did it (admin shows it), and the work was shared by both workers.
    task_ids = set(DeliveryChunk.objects.filter(delivery=delivery).values_list("task_id", flat=True))
    assert len(task_ids) == 40 and "" not in task_ids
    logs = {worker.name: worker.output() for worker in stack.workers}
    assert all(any(task_id in text for task_id in task_ids) for text in logs.values()), "one worker did nothing"
