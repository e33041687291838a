"""
Package metadata for lms-bridge.
"""
import os
import re

from setuptools import find_namespace_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))


def get_version(*file_paths):
    """Read ``__version__`` from a file without importing it."""
    with open(os.path.join(HERE, *file_paths), encoding="utf-8") as handle:
        match = re.search(r'^__version__ = ["\']([^"\']*)["\']', handle.read(), re.M)
    if not match:
        raise RuntimeError("Unable to find a version string.")
    return match.group(1)


def load_requirements(*requirements_paths):
    """
    Load the requirements from ``.in`` files, applying ``constraints.txt``.

    Lines that are comments, ``-c`` or ``-r`` references are skipped; the
    constraints file's specifiers are added to the matching requirement.
    """
    constraints = {}
    with open(os.path.join(HERE, "requirements", "constraints.txt"), encoding="utf-8") as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                name = re.match(r"[A-Za-z0-9_.\-]+", line).group(0)
                constraints[name.lower()] = line[len(name):]
    requirements = []
    for path in requirements_paths:
        with open(os.path.join(HERE, path), encoding="utf-8") as handle:
            for line in handle:
                line = line.split("#", 1)[0].strip()
                if not line or line.startswith(("-c", "-r")):
                    continue
                name = re.match(r"[A-Za-z0-9_.\-]+", line).group(0)
                constraint = constraints.get(name.lower(), "")
                if constraint and line != name:  # both bound it: one specifier set
                    constraint = "," + constraint.lstrip(",")
                requirements.append(line + constraint)
    return requirements


with open(os.path.join(HERE, "README.rst"), encoding="utf-8") as readme_file:
    README = readme_file.read()
with open(os.path.join(HERE, "CHANGELOG.rst"), encoding="utf-8") as changelog_file:
    CHANGELOG = changelog_file.read()

setup(
    name="lms-bridge",
    version=get_version("lms_bridge", "__init__.py"),
    description="Enroll learners into Open edX from signed webhooks (shops, CRMs, marketplaces).",
    long_description=README + "\n\n" + CHANGELOG,
    long_description_content_type="text/x-rst",
    author="The lms_bridge team",
    license_expression="AGPL-3.0-or-later",  # SPDX (PEP 639)
    # Namespace finding lists the template directories too (data, not Python).
    packages=find_namespace_packages(include=["lms_bridge", "lms_bridge.*"], exclude=["*.__pycache__"]),
    include_package_data=True,
    install_requires=load_requirements("requirements/base.in"),
    # Inside Open edX the LMS already has Celery; elsewhere, for MODE async/auto.
    extras_require={"celery": ["celery>=5.2"]},
    python_requires=">=3.11",
    zip_safe=False,
    keywords="Python edx openedx webhook enrollment",
    entry_points={
        "lms.djangoapp": [
            "lms_bridge = lms_bridge.apps:LmsBridgeConfig",
        ],
    },
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Framework :: Django",
        "Framework :: Django :: 4.2",
        "Framework :: Django :: 5.2",
        "Intended Audience :: Developers",
        "Natural Language :: English",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)
