# Two entry points for a fresh machine: `make quickstart` (simulate data, run the whole workflow,
# write an HTML report) and `make test` (the test suite). Both create the environment on first use.
VENV := .venv

$(VENV)/.installed: pyproject.toml setup.py $(wildcard src/ginn/_*.c src/ginn/_*.h) requirements.lock scripts/install.sh
	bash scripts/install.sh
	touch $@

.PHONY: install quickstart test
install: $(VENV)/.installed

quickstart: install
	$(VENV)/bin/ginn run --config conf/quickstart.yaml --outdir quickstart

test: install
	$(VENV)/bin/pytest
