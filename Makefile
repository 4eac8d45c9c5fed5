# The two commands of the README: `make demo` and `make test`. Both create .venv when it is missing,
# from requirements.lock (the exact versions tested together), then the package itself without its
# dependencies, so every checkout gets the same environment.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
LOCK_PYTHON := 3.11

.PHONY: demo test venv lock clean

$(BIN)/dlradiomics: pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(LOCK_PYTHON)".split("."))))' || \
		{ echo "$(LOCK) is for Python $(LOCK_PYTHON); run: make PYTHON=python$(LOCK_PYTHON) ..." >&2; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $@

venv: $(BIN)/dlradiomics

demo: venv
	$(BIN)/dlradiomics demo --out demo-output

test: venv
	$(BIN)/python -m pytest -q

# After a dependency changed in pyproject.toml and was installed into .venv: write its exact set.
lock: venv
	{ grep '^#' $(LOCK); $(BIN)/pip freeze --all --exclude-editable | grep -v -E '^(pip|wheel)=='; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)

clean:
	rm -rf $(VENV) demo-output .pytest_cache
