# The README's two commands: `make demo` and `make test`. Both create .venv when it is
# missing and reuse it otherwise (the stamp is rebuilt only when setup.cfg changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfgender-installed
DEMO_DIR ?= demo

.PHONY: venv demo test lint bench clean-demo

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job on built-in sample data: make data -> convert -> train -> evaluate.
demo: $(STAMP)
	bash scripts/demo.sh $(DEMO_DIR)

test: $(STAMP)
	$(PY) -m ruff check tfgender bin tests benchmarks
	$(PY) -m pytest tests -q

lint: $(STAMP)
	$(PY) -m ruff check tfgender bin tests benchmarks

bench: $(STAMP)
	$(PY) -m pytest benchmarks -q

clean-demo:
	rm -rf $(DEMO_DIR)
