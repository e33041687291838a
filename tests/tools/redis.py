"""
Throwaway Redis servers for the tests (Debian's ``redis-server``, on 127.0.0.1).

    with RedisServer() as redis:
        redis.url          # redis://127.0.0.1:<port>/0
        redis.stop(); redis.start()   # the same port, for "the broker was down" tests

No persistence, no configuration file; always stopped at the end.
"""
import shutil
import socket
import subprocess
import tempfile
import time

from tests.tools.mariadb import free_port, stop_process


def find_redis_server():
    """The redis-server binary, or None."""
    return shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin:/usr/local/bin")


class RedisServer:
    """One redis-server process on a fixed port (restartable)."""

    def __init__(self, port=None):
        self.binary = find_redis_server()
        if self.binary is None:
            raise RuntimeError("redis-server not found: install Debian's redis-server (make test does)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="lms-bridge-redis-")
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=10):
        """Start the server and wait until it answers PING."""
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--protected-mode", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def ping(self):
        """Whether the server answers PING (raw RESP, no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self):
        """Empty every database (FLUSHALL): what an earlier test or run queued is not this one's work."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)

    def stop(self):
        stop_process(self.process, timeout=10)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
