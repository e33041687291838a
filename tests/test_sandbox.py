"""
The sandbox as ``make run`` serves it: a fresh process on SQLite, under a burst of concurrent deliveries.
"""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lms_bridge.signatures.standard_webhooks import StandardWebhooksScheme

from .live import http_request
from .tools.mariadb import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
BURST = 20


@pytest.fixture
def sandbox(tmp_path):
    """``python -m sandbox.run`` (what make run starts) on a new SQLite file and a free port."""
    port = free_port()
    secret = StandardWebhooksScheme.generate_secret()
    env = {**os.environ, "PORT": str(port), "SANDBOX_DB": str(tmp_path / "sandbox.sqlite3"),
           "LMS_BRIDGE_DEMO_SECRET": secret, "LMS_BRIDGE_LEGACY_SECRET": "legacy-" + "x" * 32,
           "LMS_BRIDGE_CRM_SECRET": "crm-" + "x" * 32,
           "PYTHONPATH": str(ROOT)}
    for name in [name for name in env if name.startswith("LMS_BRIDGE_TEST_") or name == "DJANGO_SETTINGS_MODULE"]:
        del env[name]
    log = tmp_path / "sandbox.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "sandbox.run"], cwd=ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if http_request(port, "GET", "/api/lms-bridge/v1/webhooks/demo/", timeout=2)[0] == 405:
                break
        except OSError:
            time.sleep(0.3)
    else:
        stop_process(process, timeout=10)
        pytest.fail(f"the sandbox did not start: {log.read_text()}")
    yield port, secret, log
    stop_process(process, timeout=10)


def test_a_burst_of_deliveries_to_the_sandbox_all_succeed(sandbox):
    """
    Expected behavior: 20 concurrent signed deliveries to the running sandbox
    (SQLite) all get a 2xx answer: none is told "database is locked".
    """
    port, secret, _ = sandbox
    scheme = StandardWebhooksScheme([secret])

    def deliver(number):
        body = json.dumps({"email": f"burst{number}@example.com",
                           "courseIds": ["course-v1:edX+DemoX+Demo_Course", "course-v1:OpenedX+Bridge+2026"]}).encode()
        headers = {"Content-Type": "application/json", **scheme.sign(body)}
        status, _, reply = http_request(port, "POST", "/api/lms-bridge/v1/webhooks/demo/", body, headers, timeout=60)
        return status, reply

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        results = list(pool.map(deliver, range(BURST)))
    assert [status for status, _ in results] == [200] * BURST, results


def test_the_admin_has_its_css_and_every_printed_command_works(sandbox):
    """
    Expected behavior: the admin's stylesheet is served; each "try it" line make run prints,
    run as printed by a shell, sends a signed delivery its source accepts (one per scheme).
    """
    port, _, log = sandbox
    status, _, css = http_request(port, "GET", "/static/admin/css/base.css")
    assert status == 200 and b"body" in css
    printed = [line.strip() for line in log.read_text().splitlines() if line.strip().startswith("LMS_BRIDGE_")]
    assert len(printed) == 3, log.read_text()
    for line in printed:
        done = subprocess.run(["/bin/bash", "-c", line], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              check=False, env={k: v for k, v in os.environ.items()
                                                if not k.startswith("LMS_BRIDGE_") and k != "DJANGO_SETTINGS_MODULE"})
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        assert '"success": true' in done.stdout, done.stdout
