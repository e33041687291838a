"""
The Tutor plugin (``tutor-lms-bridge/``) with the real ``tutor`` CLI from PyPI, no Docker:
in a temporary ``TUTOR_ROOT``, enable the plugin, ``tutor config save``, and check what
Tutor rendered: the LMS settings (they compile, and a Django settings module built from
them passes lms_bridge's system checks in a fresh ``manage.py check``), the image's pip
requirement, the commands, and where the secrets are (and are not).

``make test`` installs tutor and the plugin in ``.venv-tutor`` and sets ``LMS_BRIDGE_TUTOR``,
so there these tests cannot be skipped; a bare ``pytest`` without them skips.
"""
import base64
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .test_checks import manage_py_check

ROOT = Path(__file__).resolve().parent.parent
TUTOR = os.environ.get("LMS_BRIDGE_TUTOR") or str(ROOT / ".venv-tutor" / "bin" / "tutor")
BLOCK = re.compile(r"# lms_bridge \(tutor-lms-bridge\): begin\n.*?# lms_bridge: end", re.S)

if not os.path.exists(TUTOR):
    if os.environ.get("LMS_BRIDGE_TUTOR"):
        raise RuntimeError(f"LMS_BRIDGE_TUTOR={TUTOR} does not exist: make .venv-tutor/.installed")
    pytest.skip("the tutor CLI is not installed (make test installs it in .venv-tutor)", allow_module_level=True)


@pytest.fixture
def tutor(tmp_path):
    """Run the tutor CLI on a project root of this test's own."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
           "TUTOR_ROOT": str(tmp_path / "tutor"), "TUTOR_PLUGINS_ROOT": str(tmp_path / "tutor-plugins"),
           "LANG": "C.UTF-8"}

    def run(*args, check=True):
        done = subprocess.run([TUTOR, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    run.root = tmp_path / "tutor"
    return run


def rendered(tutor, path):
    return (tutor.root / "env" / path).read_text(encoding="utf-8")


def settings_of(tutor, path="apps/openedx/settings/lms/production.py"):
    """The LMS_BRIDGE_* settings Tutor wrote, executed as the LMS would (literals only)."""
    blocks = BLOCK.findall(rendered(tutor, path))
    assert len(blocks) == 1, rendered(tutor, path)
    values = {}
    exec(compile(blocks[0], path, "exec"), {}, values)  # noqa: S102 (a file this test rendered)
    return blocks[0], values


def test_enable_renders_settings_that_compile_and_pass_lms_bridges_checks(tutor, tmp_path):
    """
    Expected behavior: enabling needs nothing set beforehand; the development and production
    settings get the same block; every rendered settings file compiles; a settings module made
    of the sandbox LMS plus that block passes `manage.py check` in a new process.
    """
    enabled = tutor("plugins", "enable", "lms-bridge")
    assert "undefined" not in enabled.stdout + enabled.stderr
    tutor("config", "save",
          "--set", 'LMS_BRIDGE_SOURCES={"shop": {}, "hr": {"FORMAT": "bulk", "MODE": "async"}, '
                   '"crm": {"SCHEME": "hmac-sha256", "OPTIONS": {"HEADER": "X-Signature"}}}',
          "--set", 'LMS_BRIDGE_BACKENDS=[{"BACKEND": "lms_bridge.backends.openedx_api.OpenEdxApiBackend", '
                   '"BASE_URL": "https://lms.site-a.example.com", "SELECTOR_REGEX": "course-v1:OrgA\\\\+", '
                   '"OPTIONS": {"CLIENT_ID": "bridge-client", "CLIENT_SECRET": "client-secret-from-config"}}, '
                   '{"BACKEND": "lms_bridge.backends.openedx.OpenEdxBackend"}]',
          "--set", 'LMS_BRIDGE_EXTRA_SETTINGS={"LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS": 300}')
    for path in (tutor.root / "env" / "apps" / "openedx" / "settings").rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    block, values = settings_of(tutor)
    assert block == settings_of(tutor, "apps/openedx/settings/lms/development.py")[0]
    assert set(values["LMS_BRIDGE_SOURCES"]) == {"shop", "hr", "crm"}
    assert values["LMS_BRIDGE_SOURCES"]["hr"]["MODE"] == "async" and values["LMS_BRIDGE_CELERY"] is True
    assert values["LMS_BRIDGE_BACKENDS"][0]["OPTIONS"]["CLIENT_SECRET"] == "client-secret-from-config"
    assert values["LMS_BRIDGE_PROCESSING_TIMEOUT_SECONDS"] == 300
    for source in values["LMS_BRIDGE_SOURCES"].values():
        (secret,) = source["SECRETS"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[len("whsec_"):])) == 32
    assert len({source["SECRETS"][0] for source in values["LMS_BRIDGE_SOURCES"].values()}) == 3

    checked = manage_py_check(tmp_path, "from sandbox.settings import *  # noqa\n\n" + block + "\n",
                              args=("--fail-level", "WARNING"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_a_broken_source_is_caught_by_the_checks_in_a_fresh_process(tutor, tmp_path):
    """Expected behavior: a typo in a source (an unknown scheme) makes `manage.py check` fail, naming it."""
    tutor("plugins", "enable", "lms-bridge")
    tutor("config", "save", "--set", 'LMS_BRIDGE_SOURCES={"shop": {"SCHEME": "standard-webhook"}}')
    block, _ = settings_of(tutor)
    checked = manage_py_check(tmp_path, "from sandbox.settings import *  # noqa\n\n" + block + "\n")
    assert checked.returncode != 0 and "LMS_BRIDGE_SOURCES['shop']" in checked.stderr, checked.stderr


def test_secrets_are_generated_once_kept_in_config_and_never_in_the_image(tutor):
    """
    Expected behavior: the master key is saved in config.yml once; saving again keeps every secret;
    `tutor lms-bridge secret` prints the one the LMS accepts; no file of the image's build context
    holds it; rotation keeps the previous secret until told not to.
    """
    tutor("plugins", "enable", "lms-bridge")
    unsaved = tutor("lms-bridge", "secret", "shop", check=False)  # enable alone saves no generated value
    assert unsaved.returncode != 0 and "tutor config save" in unsaved.stderr
    tutor("config", "save")
    config = yaml.safe_load((tutor.root / "config.yml").read_text())
    assert len(config["LMS_BRIDGE_SECRET_KEY"]) == 64
    _, values = settings_of(tutor)
    secret = values["LMS_BRIDGE_SOURCES"]["shop"]["SECRETS"][0]
    saved = tutor("config", "save")
    assert secret not in saved.stdout + saved.stderr
    assert settings_of(tutor)[1]["LMS_BRIDGE_SOURCES"]["shop"]["SECRETS"] == [secret]
    assert tutor("lms-bridge", "secret", "shop").stdout.strip() == secret
    for path in (tutor.root / "env" / "build").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert secret not in text and config["LMS_BRIDGE_SECRET_KEY"] not in text, path

    tutor("config", "save", "--set", 'LMS_BRIDGE_SOURCES={"shop": {"SECRET_VERSION": 2}}')
    rotated = settings_of(tutor)[1]["LMS_BRIDGE_SOURCES"]["shop"]["SECRETS"]
    assert len(rotated) == 2 and rotated[1] == secret and rotated[0] != secret
    assert tutor("lms-bridge", "secret", "shop").stdout.strip() == rotated[0]
    tutor("config", "save", "--set", 'LMS_BRIDGE_SOURCES={"shop": {"SECRET_VERSION": 2, '
                                     '"KEEP_PREVIOUS_SECRET": false}}')
    assert settings_of(tutor)[1]["LMS_BRIDGE_SOURCES"]["shop"]["SECRETS"] == [rotated[0]]


def test_the_image_installs_the_configured_requirement(tutor):
    tutor("plugins", "enable", "lms-bridge")
    tutor("config", "save")
    assert "install 'lms-bridge==" in rendered(tutor, "build/openedx/Dockerfile")
    url = "git+https://git.example.com/lms_bridge.git@v0.1.0"
    tutor("config", "save", "--set", f"LMS_BRIDGE_PIP_REQUIREMENT={url}")
    assert f"install '{url}'" in rendered(tutor, "build/openedx/Dockerfile")


def test_the_commands(tutor):
    """Expected behavior: `tutor lms-bridge sources` prints URLs, schemes, how to get secrets; the do jobs exist."""
    tutor("plugins", "enable", "lms-bridge")
    tutor("config", "save", "--set", "ENABLE_HTTPS=true", "--set", "LMS_HOST=learn.example.com",
          "--set", 'LMS_BRIDGE_SOURCES={"shop": {}, "hr": {"FORMAT": "bulk", "SCHEME": "hmac-sha256"}}')
    listing = tutor("lms-bridge", "sources").stdout
    assert "https://learn.example.com/api/lms-bridge/v1/webhooks/shop/" in listing
    assert "https://learn.example.com/api/lms-bridge/v1/webhooks/hr/" in listing
    assert "scheme: hmac-sha256" in listing and "format: bulk" in listing
    assert "tutor lms-bridge secret hr" in listing and "whsec_" not in listing
    missing = tutor("lms-bridge", "secret", "nope", check=False)
    assert missing.returncode != 0 and "No source 'nope'" in missing.stderr
    jobs = tutor("local", "do", "--help").stdout
    for job in ("lms-bridge-check", "lms-bridge-sweep", "lms-bridge-purge"):
        assert job in jobs
