"""
The Tutor plugin of lms_bridge.

Enabled (``tutor plugins enable lms-bridge``), it:

* installs ``LMS_BRIDGE_PIP_REQUIREMENT`` into the openedx image, where the
  image's extra pip requirements are installed;
* defines lms_bridge's configuration with safe defaults: one ``shop`` source
  (Standard Webhooks), a generated master key from which each source's 32-byte
  ``whsec_`` secret is derived, the mode, the retention;
* writes ``LMS_BRIDGE_*`` settings into the LMS settings (development and production);
* adds ``tutor lms-bridge`` (sources, secret, check) and the ``do`` jobs
  ``lms-bridge-check``, ``lms-bridge-sweep`` and ``lms-bridge-purge``.

Secrets stay in Tutor's ``config.yml`` and the rendered runtime settings (mounted
into the containers); they are never written into the image's build context,
and no command prints one unless asked for it by name (``tutor lms-bridge secret``).
"""
import base64
import hashlib
import hmac
import os
import subprocess
import sys

import click
from tutor import config as tutor_config
from tutor import hooks

from . import __version__

WEBHOOK_PATH = "/api/lms-bridge/v1/webhooks/{slug}/"
SCHEMES = ("standard-webhooks", "hmac-sha256", "lernito")
ASYNC_MODES = ("async", "auto")

hooks.Filters.CONFIG_DEFAULTS.add_items([
    ("LMS_BRIDGE_VERSION", __version__),
    # What pip installs into the openedx image: a version, or a git URL
    # ("git+https://...@<tag>") until lms-bridge is published on PyPI.
    ("LMS_BRIDGE_PIP_REQUIREMENT", f"lms-bridge=={__version__}"),
    # Webhook sources by slug: any key of a lms_bridge source (SCHEME, FORMAT, MODE,
    # MAX_PAIRS, COURSES, ACTIONS, OPTIONS, ...). SECRETS is derived unless given;
    # SECRET_VERSION (default 1) rotates it: the previous version is still accepted
    # until KEEP_PREVIOUS_SECRET is false.
    ("LMS_BRIDGE_SOURCES", {"shop": {"SCHEME": "standard-webhooks"}}),
    # The MODE of the sources that set none ("" keeps each format's default: sync
    # for lms-bridge, auto for the others).
    ("LMS_BRIDGE_MODE", ""),
    # lms_bridge's backend registry; [] is the LMS itself. A remote Open edX:
    # {"BACKEND": "lms_bridge.backends.openedx_api.OpenEdxApiBackend", "BASE_URL": ...,
    #  "SELECTOR_REGEX": ..., "OPTIONS": {"CLIENT_ID": ..., "CLIENT_SECRET": ...}}
    ("LMS_BRIDGE_BACKENDS", []),
    # Days deliveries are kept (tutor local do lms-bridge-purge).
    ("LMS_BRIDGE_RETENTION_DAYS", 365),
    # A Celery queue of its own ("": the LMS's default queue, which Tutor's lms-worker consumes).
    ("LMS_BRIDGE_CELERY_QUEUE", ""),
    # Any other LMS_BRIDGE_* setting, by name.
    ("LMS_BRIDGE_EXTRA_SETTINGS", {}),
])
hooks.Filters.CONFIG_UNIQUE.add_items([
    # The master key the sources' secrets are derived from: 64 random characters.
    ("LMS_BRIDGE_SECRET_KEY", "{{ 64|random_string }}"),
])


def source_secret(master_key, slug, version=1):
    """A source's secret: ``whsec_`` and 32 bytes derived from the master key, the slug and the version."""
    digest = hmac.new(str(master_key).encode(), f"lms-bridge:{slug}:{int(version)}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def render_sources(sources, master_key, mode=""):
    """lms_bridge's ``LMS_BRIDGE_SOURCES`` from the plugin's configuration."""
    rendered = {}
    for slug, options in (sources or {}).items():
        options = dict(options or {})
        source = {key: value for key, value in options.items() if key not in ("SECRET_VERSION", "KEEP_PREVIOUS_SECRET")}
        source.setdefault("SCHEME", "standard-webhooks")
        if mode and "MODE" not in source:
            source["MODE"] = mode
        if "SECRETS" not in source:
            version = int(options.get("SECRET_VERSION", 1))
            secrets = [source_secret(master_key, slug, version)]
            if version > 1 and options.get("KEEP_PREVIOUS_SECRET", True):
                secrets.append(source_secret(master_key, slug, version - 1))
            source["SECRETS"] = secrets
        rendered[slug] = source
    return rendered


def settings_block(sources, master_key, mode="", backends=(), queue="", extra=None):
    """The Python the LMS settings get: ``LMS_BRIDGE_*`` settings as literals."""
    sources = render_sources(sources, master_key, mode)
    lines = ["# lms_bridge (tutor-lms-bridge): begin", f"LMS_BRIDGE_SOURCES = {sources!r}"]
    if backends:
        lines.append(f"LMS_BRIDGE_BACKENDS = {list(backends)!r}")
    if any(source.get("MODE") in ASYNC_MODES for source in sources.values()):
        # The LMS's own Celery app runs the tasks (Tutor's lms-worker); say so, whatever the broker setting is called.
        lines.append("LMS_BRIDGE_CELERY = True")
    if queue:
        lines.append(f"LMS_BRIDGE_CELERY_QUEUE = {queue!r}")
    for name, value in sorted((extra or {}).items()):
        if not str(name).startswith("LMS_BRIDGE_") or not str(name).isidentifier():
            raise click.ClickException(f"LMS_BRIDGE_EXTRA_SETTINGS: {name!r} is not an LMS_BRIDGE_* setting name")
        lines.append(f"{name} = {value!r}")
    lines.append("# lms_bridge: end")
    return "\n".join(lines)


# Templates call the functions above: config values become Python literals there, never text pasted into code.
hooks.Filters.ENV_TEMPLATE_VARIABLES.add_items([("lms_bridge_settings_block", settings_block)])

hooks.Filters.ENV_PATCHES.add_items([
    # Where the image's OPENEDX_EXTRA_PIP_REQUIREMENTS are installed, just before them (see the ADR).
    ("openedx-dockerfile-post-python-requirements",
     "RUN --mount=type=cache,target=/openedx/.cache/pip,sharing=shared \\\n"
     "    $PIP_COMMAND install '{{ LMS_BRIDGE_PIP_REQUIREMENT }}'"),
    # Included by both the development and the production LMS settings.
    ("openedx-lms-common-settings",
     "{{ lms_bridge_settings_block(LMS_BRIDGE_SOURCES, LMS_BRIDGE_SECRET_KEY, LMS_BRIDGE_MODE, LMS_BRIDGE_BACKENDS, "
     "LMS_BRIDGE_CELERY_QUEUE, LMS_BRIDGE_EXTRA_SETTINGS) }}"),
])


# do jobs: run in the LMS container by ``tutor local|dev|k8s do ...``.
@click.command("lms-bridge-check", help="Run lms_bridge's system checks in the LMS")
def do_check():
    yield ("lms", "./manage.py lms check --fail-level WARNING && ./manage.py lms lms_bridge_check_backends")


@click.command("lms-bridge-sweep", help="Queue again the deliveries a down broker or a dead worker left behind")
def do_sweep():
    yield ("lms", "./manage.py lms lms_bridge_sweep --progress")


@click.command("lms-bridge-purge", help="Delete deliveries older than LMS_BRIDGE_RETENTION_DAYS")
def do_purge():
    yield ("lms", "./manage.py lms lms_bridge_purge_deliveries --older-than-days {{ LMS_BRIDGE_RETENTION_DAYS }}")


hooks.Filters.CLI_DO_COMMANDS.add_items([do_check, do_sweep, do_purge])


def _load(context):
    """
    The full configuration and the sources as the LMS gets them; refused until the
    generated master key is saved (else each call would derive secrets from a new one).
    """
    if "LMS_BRIDGE_SECRET_KEY" not in tutor_config.get_user(context.obj.root):
        raise click.ClickException("lms_bridge's secrets are generated when the configuration is saved: "
                                   "run `tutor config save` first")
    config = tutor_config.load(context.obj.root)
    return config, render_sources(config["LMS_BRIDGE_SOURCES"], config["LMS_BRIDGE_SECRET_KEY"],
                                  config.get("LMS_BRIDGE_MODE", ""))


@click.group("lms-bridge", help="lms_bridge: webhook sources, their secrets, checks")
def command():
    """``tutor lms-bridge``."""


@command.command("sources", help="Each source's webhook URL, scheme, mode, and how to get its secret")
@click.pass_context
def sources_command(context):
    config, rendered = _load(context)
    scheme_of_site = "https" if config.get("ENABLE_HTTPS") else "http"
    if not rendered:
        click.echo("No source is configured: tutor config save --set 'LMS_BRIDGE_SOURCES={\"shop\": {}}'")
    for slug, source in rendered.items():
        mode = source.get("MODE") or "the format's default"
        click.echo(f"{slug}\n  URL:    {scheme_of_site}://{config['LMS_HOST']}{WEBHOOK_PATH.format(slug=slug)}\n"
                   f"  scheme: {source['SCHEME']}   format: {source.get('FORMAT', 'lms-bridge')}   mode: {mode}\n"
                   f"  secret: tutor lms-bridge secret {slug}"
                   + ("" if len(source["SECRETS"]) == 1
                      else f" (and {len(source['SECRETS']) - 1} older, still accepted)"))


@command.command("secret", help="Print the current secret of a source (give it to that sender only)")
@click.argument("slug")
@click.pass_context
def secret_command(context, slug):
    _, rendered = _load(context)
    if slug not in rendered:
        raise click.ClickException(f"No source {slug!r}; configured: {', '.join(rendered) or 'none'}")
    click.echo(rendered[slug]["SECRETS"][0])


@command.command("check", help="Run lms_bridge's checks in the LMS container (tutor <mode> do lms-bridge-check)")
@click.option("--mode", type=click.Choice(["local", "dev", "k8s"]), default="local", show_default=True)
def check_command(mode):
    tutor = os.path.join(os.path.dirname(sys.executable), "tutor")
    sys.exit(subprocess.call([tutor, mode, "do", "lms-bridge-check"]))  # noqa: S603 (a fixed argument list)


hooks.Filters.CLI_COMMANDS.add_item(command)
