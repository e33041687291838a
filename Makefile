.PHONY: docs help run test test-mariadb bench quality pii_check migrations-check upgrade requirements system-deps clean tox

.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON_VERSION ?= $(shell command -v python3.11 || command -v python3)
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000
# The tests whose outcome depends on the database's charset and collation (run again on utf8mb3 tables).
CHARSET_TESTS := tests/test_database.py tests/backends/test_openedx.py tests/test_retirement.py
export PIP_DISABLE_PIP_VERSION_CHECK := 1

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/bin/activate:
	$(PYTHON_VERSION) -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/activate requirements/quality.txt requirements/test.txt requirements/base.txt setup.py
	$(PIP) install -q -r requirements/quality.txt
	$(PIP) install -q --no-deps -e .
	touch $@

requirements: $(VENV)/.installed ## create the virtualenv and install the test and quality requirements

# make run's own, much smaller set (skipped when the full one is installed).
$(VENV)/.sandbox: requirements/sandbox.txt setup.py
	@if [ ! -x $(PY) ]; then echo "[1/3] Creating the virtualenv $(VENV)..."; $(PYTHON_VERSION) -m venv $(VENV); fi
	@if [ -f $(VENV)/.installed ] && [ $(VENV)/.installed -nt requirements/sandbox.txt ]; then \
		echo "[2/3] The test requirements are installed: they include the sandbox's."; \
	else \
		echo "[2/3] Installing the sandbox's $$(grep -c '==' requirements/sandbox.txt) packages (not the lint and test toolchain)..."; \
		$(PIP) install -q --progress-bar off -r requirements/sandbox.txt && $(PIP) install -q --no-deps -e . || exit 1; \
	fi
	@touch $@

# The real tutor CLI and the plugin, in a virtualenv of their own (tutor pins click below what the linters use).
TUTOR_VENV ?= .venv-tutor
$(TUTOR_VENV)/.installed: requirements/tutor.txt tutor-lms-bridge/pyproject.toml
	$(PYTHON_VERSION) -m venv $(TUTOR_VENV)
	$(TUTOR_VENV)/bin/pip install -q -r requirements/tutor.txt
	$(TUTOR_VENV)/bin/pip install -q -e ./tutor-lms-bridge
	touch $@

$(VENV)/.mariadb: $(VENV)/.installed requirements/mariadb.txt
	$(PIP) install -q -r requirements/mariadb.txt
	touch $@

APT_INSTALL := env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
DEBIAN_TEST_PACKAGES := chromium chromium-driver mariadb-server libmariadb-dev pkg-config redis-server php-cli nodejs curl openssl
system-deps: ## install the Debian packages the tests use (headless Chromium, MariaDB, the MySQL client headers, Redis, PHP and Node.js for the sender samples)
	@PATH="$$PATH:/usr/sbin"; \
	if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
		|| ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null \
		|| ! pkg-config --exists libmariadb 2>/dev/null || ! command -v redis-server >/dev/null \
		|| ! command -v php >/dev/null || ! command -v node >/dev/null || ! command -v curl >/dev/null \
		|| ! command -v openssl >/dev/null; then \
		echo "Installing $(DEBIAN_TEST_PACKAGES) (Debian packages)..."; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
		$$SUDO apt-get update -qq && $$SUDO $(APT_INSTALL) $(DEBIAN_TEST_PACKAGES) >/dev/null \
			|| { echo "Could not install $(DEBIAN_TEST_PACKAGES): install them, then run make test again."; exit 1; }; \
	fi

run: $(VENV)/.sandbox ## migrate the SQLite sandbox and serve the webhook on 127.0.0.1:$(PORT)
	@echo "[3/3] Migrating the SQLite sandbox and starting the server..."
	@PORT=$(PORT) $(PY) -m sandbox.run

test: system-deps requirements $(VENV)/.mariadb $(TUTOR_VENV)/.installed ## quality and migrations checks, then the suite on SQLite and on MariaDB
	$(MAKE) --no-print-directory quality migrations-check docs
	@echo "== The test suite on a throwaway MariaDB server (MySQL-compatible, as Open edX runs) =="
	LMS_BRIDGE_BROWSER_TESTS=required LMS_BRIDGE_SAMPLE_TESTS=required LMS_BRIDGE_TUTOR=$(TUTOR_VENV)/bin/tutor $(PY) -m tests.tools.mariadb -- $(PY) -m pytest
	@echo "== What depends on the charset, on utf8mb3_general_ci tables (installs older than Tutor's utf8mb4) =="
	LMS_BRIDGE_TEST_MYSQL_CHARSET=utf8mb3 $(PY) -m tests.tools.mariadb -- $(PY) -m pytest --no-cov $(CHARSET_TESTS)
	@echo "== The test suite on SQLite =="
	LMS_BRIDGE_BROWSER_TESTS=required LMS_BRIDGE_SAMPLE_TESTS=required LMS_BRIDGE_TUTOR=$(TUTOR_VENV)/bin/tutor $(PY) -m pytest

test-mariadb: system-deps requirements $(VENV)/.mariadb ## only the suite on a throwaway MariaDB server
	$(PY) -m tests.tools.mariadb -- $(PY) -m pytest $(PYTEST_ARGS)

bench: system-deps requirements $(VENV)/.mariadb ## the benchmark: rates, latencies, SQL and commits per delivery, async acks, bulk on Celery, memory
	rm -f .bench.jsonl
	LMS_BRIDGE_BENCH_JSON=.bench.jsonl PYTHONPATH=. $(PY) -m tests.tools.bench queries
	LMS_BRIDGE_BENCH_JSON=.bench.jsonl PYTHONPATH=. $(PY) -m tests.tools.mariadb -- $(PY) -m tests.tools.bench queries server async
	@echo "== Compared across runs (also in docs/performance.rst) =="
	@LMS_BRIDGE_BENCH_JSON=.bench.jsonl PYTHONPATH=. $(PY) -m tests.tools.bench report

$(VENV)/.docs: $(VENV)/.installed requirements/docs.txt
	$(PIP) install -q -r requirements/docs.txt
	touch $@

docs: $(VENV)/.docs ## the documentation site (warnings are errors), doc8, and twine check of both distributions
	rm -rf docs/_build .dist
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	$(VENV)/bin/doc8 docs README.rst CHANGELOG.rst tutor-lms-bridge/README.rst
	$(PY) -m build -q --sdist --wheel --outdir .dist . >/dev/null
	$(PY) -m build -q --sdist --wheel --outdir .dist tutor-lms-bridge >/dev/null
	$(VENV)/bin/twine check --strict .dist/*
	@echo "The site: docs/_build/html/index.html"

migrations-check: requirements ## fail if a model change has no migration
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) -m django makemigrations --check --dry-run --skip-checks lms_bridge

quality: requirements ## ruff, edx-lint's pylint and the PII annotations check
	$(VENV)/bin/ruff check lms_bridge tests sandbox setup.py manage.py tutor-lms-bridge
	PYTHONPATH=. $(VENV)/bin/pylint lms_bridge
	$(MAKE) --no-print-directory pii_check

pii_check: requirements ## every model must carry PII annotations
	DJANGO_SETTINGS_MODULE=tests.settings $(VENV)/bin/code_annotations django_find_annotations \
		--config_file .pii_annotations.yml --lint --report --coverage --app_name lms_bridge --report_path /tmp/lms_bridge_pii

tox: requirements ## run tox (Django and Python versions Open edX runs; pyenv's Pythons are found too)
	$(VENV)/bin/pip install -q -r requirements/ci.txt
	PATH="$$PATH$$(for d in $$(pyenv root 2>/dev/null)/versions/*/bin; do printf ':%s' "$$d"; done)" $(VENV)/bin/tox

upgrade: export CUSTOM_COMPILE_COMMAND=make upgrade
upgrade: ## recompile the requirements/*.txt files from the *.in files
	$(PIP) install -q -r requirements/pip-tools.txt
	cd requirements && for f in pip-tools base test sandbox quality docs ci dev mariadb tutor; do \
		../$(VENV)/bin/pip-compile --quiet --upgrade --allow-unsafe --rebuild --strip-extras \
			--no-emit-index-url --no-emit-find-links -o $$f.txt $$f.in || exit 1; \
		if [ $$f = test ]; then sed -i '/^[dD]jango==/d; /^djangorestframework==/d' test.txt; fi; done  # tox picks Django (and DRF)

clean: ## remove the virtualenv, the sandbox database and caches
	rm -rf $(VENV) $(TUTOR_VENV) docs/_build .dist sandbox.sqlite3 .pytest_cache .coverage htmlcov .tox *.egg-info
