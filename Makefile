# The two commands of the README: `make demo` and `make test`.
# Both create .venv (python3 -m venv) if it is missing and install the package
# with its pinned dependencies; they re-install only when pyproject.toml changed.

PYTHON ?= python3
VENV := .venv
# Touched after a successful install; lives inside .venv so a new .venv re-installs.
INSTALLED := $(VENV)/.realfake-installed

.PHONY: demo test lint dry-run install

demo: $(INSTALLED)
	export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	$(VENV)/bin/snakemake --profile profiles/local

# PYTEST_STATUS_FILE (set by .ci/run) receives pytest's own exit status, which
# make reports only as "failed".
test: $(INSTALLED)
	export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	status=0; $(VENV)/bin/pytest || status=$$?; \
	if [ -n "$${PYTEST_STATUS_FILE:-}" ]; then echo "$$status" > "$$PYTEST_STATUS_FILE"; fi; \
	exit "$$status"

lint: $(INSTALLED)
	export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	$(VENV)/bin/snakemake --lint && $(VENV)/bin/snakefmt --check . \
	  && $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

dry-run: $(INSTALLED)
	export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	$(VENV)/bin/snakemake -n --profile profiles/local

install: $(INSTALLED)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -e '.[mpi,dev]'
	touch $(INSTALLED)
