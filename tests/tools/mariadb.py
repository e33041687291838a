"""
Run a command against a throwaway MariaDB server.

    python -m tests.tools.mariadb -- python -m pytest

Creates a data directory under the system's temporary directory, starts
Debian's ``mariadbd`` on 127.0.0.1 and a free port (utf8mb4, the
case-insensitive ``utf8mb4_unicode_ci`` collation Open edX uses), creates a
user, runs the command with ``LMS_BRIDGE_TEST_MYSQL_*`` in its environment
(``tests/settings.py`` then uses MariaDB), and always stops the server and
removes the directory. Exits with the command's status.
"""
import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

USER = "lms_bridge"
PASSWORD = "lms_bridge-test-only"


def find(*names):
    """Return the first of ``names`` found on PATH or in /usr/sbin, or exit with a hint."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
        if found:
            return found
    sys.exit(f"{names[0]} not found: install Debian's mariadb-server (make test does).")


def stop_process(process, timeout):
    """Terminate ``process``, waiting up to ``timeout`` seconds before killing it."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port():
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One throwaway mariadbd."""

    def __init__(self):
        self.datadir = tempfile.mkdtemp(prefix="lms-bridge-mariadb-")
        self.socket = os.path.join(self.datadir, "mysqld.sock")
        self.port = free_port()
        self.process = None

    def client(self, sql):
        """Run SQL as root over the socket."""
        subprocess.run([find("mariadb", "mysql"), "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", sql],
                       check=True)

    def start(self):
        """Initialize the data directory and start the server; return when it answers."""
        user = getpass.getuser()
        subprocess.run(
            [find("mariadb-install-db", "mysql_install_db"), "--no-defaults", f"--datadir={self.datadir}",
             f"--user={user}", "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=subprocess.DEVNULL,
        )
        self.process = subprocess.Popen([
            find("mariadbd", "mysqld"), "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--user={user}", "--skip-name-resolve",
            f"--pid-file={os.path.join(self.datadir, 'mysqld.pid')}",
            f"--log-error={os.path.join(self.datadir, 'error.log')}",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=128M", "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
        ])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ping = subprocess.run([find("mariadb-admin", "mysqladmin"), "--no-defaults", f"--socket={self.socket}",
                                   "-uroot", "ping"], capture_output=True, check=False)
            if ping.returncode == 0:
                break
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        else:
            self.stop()
            sys.exit("MariaDB did not start within 60 s")
        if self.process.poll() is not None:
            with open(os.path.join(self.datadir, "error.log"), encoding="utf-8", errors="replace") as log:
                sys.stderr.write(log.read()[-3000:])
            sys.exit("MariaDB failed to start")
        self.client(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; "
                    f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1';")

    def environment(self):
        """What tests/settings.py reads to use this server."""
        return {
            "LMS_BRIDGE_TEST_MYSQL_HOST": "127.0.0.1",
            "LMS_BRIDGE_TEST_MYSQL_PORT": str(self.port),
            "LMS_BRIDGE_TEST_MYSQL_USER": USER,
            "LMS_BRIDGE_TEST_MYSQL_PASSWORD": PASSWORD,
            "LMS_BRIDGE_TEST_MYSQL_SOCKET": self.socket,
        }

    def stop(self):
        """Stop the server and remove its data."""
        stop_process(self.process, timeout=60)
        shutil.rmtree(self.datadir, ignore_errors=True)


def main(argv):
    """Start, run ``argv`` after ``--``, stop; return the command's exit status."""
    command = argv[argv.index("--") + 1:] if "--" in argv else argv
    if not command:
        sys.exit(__doc__)
    server = Server()
    try:
        server.start()
        print(f"MariaDB {server.datadir} listening on 127.0.0.1:{server.port}", flush=True)
        return subprocess.run(command, env={**os.environ, **server.environment()}, check=False).returncode
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
