"""The documentation stays true: every setting is in the configuration reference, with its real default."""
import re
from pathlib import Path

from lms_bridge.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "docs" / "configuration.rst").read_text(encoding="utf-8")
ROW = re.compile(r"   \* - ``(LMS_BRIDGE_[A-Z_]+)``\n     - (.+)\n     - (.+)\n", re.M)


def test_every_setting_is_documented_with_its_default():
    rows = {name: (kind, default) for name, kind, default in ROW.findall(REFERENCE)}
    assert set(rows) == set(DEFAULTS)
    for name, value in DEFAULTS.items():
        if isinstance(value, (int, str, type(None))) and not isinstance(value, bool):
            assert rows[name][1] == f"``{value!r}``".replace("'", '"'), (name, rows[name], value)


def test_every_page_is_in_the_table_of_contents():
    index = (ROOT / "docs" / "index.rst").read_text(encoding="utf-8")
    pages = {path.stem for path in (ROOT / "docs").glob("*.rst")} - {"index"}
    listed = set(re.findall(r"^   ([a-z/]+)$", index, re.M))
    assert pages <= {page.split("/")[0] for page in listed}, pages - listed


def test_the_openapi_description_names_every_scheme_and_the_retry_headers():
    """Expected behavior: one security scheme per signature scheme; Retry-After and Idempotent-Replayed described."""
    import yaml  # pylint: disable=import-outside-toplevel

    from lms_bridge.signatures import SCHEMES  # pylint: disable=import-outside-toplevel

    description = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
    operation = description["paths"]["/api/lms-bridge/v1/webhooks/{source}/"]["post"]
    schemes = description["components"]["securitySchemes"]
    assert len(schemes) == len(SCHEMES) and all(s["type"] == "apiKey" and s["in"] == "header"
                                                for s in schemes.values())
    assert sorted(operation["security"], key=str) == sorted(({name: []} for name in schemes), key=str)
    for status in ("429", "503"):
        assert "Retry-After" in operation["responses"][status]["headers"]
    assert "Idempotent-Replayed" in operation["responses"]["200"]["headers"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature", "X-Lernito-Signature"} <= headers
