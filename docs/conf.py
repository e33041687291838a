"""Sphinx configuration of lms_bridge's documentation site (``make docs``)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
project = "lms_bridge"
author = "The lms_bridge team"
copyright = "2026, the lms_bridge team"  # noqa: A001  pylint: disable=redefined-builtin
release = re.search(r'__version__ = "([^"]+)"', (ROOT / "lms_bridge" / "__init__.py").read_text()).group(1)
version = release
extensions = []
exclude_patterns = ["_build", "samples/README*"]
html_theme = "alabaster"
html_title = f"lms_bridge {release}"
html_static_path = []
# The README's sections are included page by page: its internal links name sections of other pages.
suppress_warnings = []
