# The README's two commands: `make demo` and `make test`. Both create .venv when it is
# missing and reuse it otherwise (the stamp is rebuilt only when setup.cfg changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfgender-installed
DEMO_DIR ?= demo

.PHONY: venv demo test test-quick lint bench clean-demo

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job on built-in sample data: make data -> convert -> train -> evaluate.
demo: $(STAMP)
	bash scripts/demo.sh $(DEMO_DIR)

# Three pytest workers on 2 cores, each test file kept in one (its module fixtures are built
# once): much of a test is Python (tracing, model building, starting programs), which one core
# does, so a third worker fills the cores two leave idle (session 18: two workers kept them
# 84% busy). The slowest tests are listed at the end. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 3
test: $(STAMP)
	$(PY) -m ruff check tfgender bin tests benchmarks
	$(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile --durations=25

# The quick loop while editing: everything but the tests marked slow (pyproject.toml).
test-quick: $(STAMP)
	$(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check tfgender bin tests benchmarks

bench: $(STAMP)
	$(PY) -m pytest benchmarks -q

clean-demo:
	rm -rf $(DEMO_DIR)
