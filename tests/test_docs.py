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
