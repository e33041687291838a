"""
A real multi-process server for the live tests: gunicorn with 4 workers on
127.0.0.1, serving the test settings against the test database (MariaDB; an
in-memory SQLite database cannot be shared between processes).
"""
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .tools.mariadb import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent


def http_request(port, method, path, body=b"", headers=None, timeout=60):
    """Send one request to 127.0.0.1:``port``; return (status, headers dict, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class LiveServer:
    """A gunicorn process tree serving the webhook."""

    def __init__(self, database_name, workers=4, extra_env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "LMS_BRIDGE_TEST_MYSQL_NAME": database_name,
               "PYTHONPATH": str(ROOT), **(extra_env or {})}
        self.log = tempfile.TemporaryFile(prefix="lms-bridge-gunicorn-")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "gunicorn", "sandbox.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(workers), "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self._wait_until_ready()

    def _wait_until_ready(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.output()}")
            try:
                status, _, _ = self.request("GET", "/api/lms-bridge/v1/webhooks/shop/", timeout=2)
                if status == 405:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not answer within 60 s")

    def request(self, method, path, body=b"", headers=None, timeout=60):
        """Send one request; return (status, headers dict, body bytes)."""
        return http_request(self.port, method, path, body, headers, timeout)

    def output(self):
        """What gunicorn printed (errors, tracebacks)."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-5000:]

    def stop(self):
        """Stop the server (and its workers); its log joins the suite's log audit."""
        from .log_audit import SERVER_OUTPUT  # pylint: disable=import-outside-toplevel

        stop_process(self.process, timeout=30)
        self.log.seek(0)
        SERVER_OUTPUT.extend(self.log.read().decode("utf-8", "replace").splitlines())
        self.log.close()


class CeleryWorker:
    """A real Celery worker process (prefork, as Tutor's lms-worker runs it), on the test database."""

    def __init__(self, database_name, name, extra_env=None, concurrency=1):
        self.name = name
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "LMS_BRIDGE_TEST_MYSQL_NAME": database_name,
               "PYTHONPATH": str(ROOT), **(extra_env or {})}
        self.log = tempfile.NamedTemporaryFile(prefix="lms-bridge-worker-", delete=False)
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "celery", "-A", "sandbox.celery", "worker", "--pool", "prefork",
             "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"{name}@%h", "--loglevel", "info"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while "ready." not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.stop()
                raise RuntimeError(f"the Celery worker did not start: {output[-3000:]}")
            time.sleep(0.2)

    def output(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as log:
            return log.read()

    def kill(self):
        """SIGKILL the worker and its pool processes at once (a machine lost, an OOM kill)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        from .log_audit import SERVER_OUTPUT  # pylint: disable=import-outside-toplevel

        SERVER_OUTPUT.extend(self.output().splitlines())
        os.unlink(self.log.name)


def wait_until(predicate, timeout, interval=0.2):
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
