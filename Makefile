# The two commands of the README: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_DIR := tests/cypher_lint
WIDGET_DIR := tests/widget_render

.PHONY: venv demo test test-fast check notebooks clean

venv: $(VENV)/.installed $(LINT_DIR)/node_modules/.installed $(WIDGET_DIR)/node_modules/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	touch $@

$(LINT_DIR)/node_modules/.installed: $(LINT_DIR)/package-lock.json
	npm ci --prefix $(LINT_DIR) --no-audit --no-fund --loglevel=error
	touch $@

$(WIDGET_DIR)/node_modules/.installed: $(WIDGET_DIR)/package-lock.json
	npm ci --prefix $(WIDGET_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

demo: venv  ## load a real package into the embedded database and document it
	$(BIN)/blarify-lab demo

test: venv  ## the whole suite: library tests on every available backend, and the notebooks
	$(BIN)/python -m pytest

test-fast: venv  ## everything but the soak
	$(BIN)/python -m pytest -m "not slow"

notebooks: venv  ## re-execute the example notebooks, storing fresh outputs for nbval
	for nb in notebooks/*.ipynb; do $(BIN)/jupyter nbconvert --to notebook --execute --inplace $$nb; done

check: venv  ## the static checks CI runs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

clean:
	rm -rf $(VENV) $(LINT_DIR)/node_modules $(WIDGET_DIR)/node_modules .pytest_cache .ruff_cache
