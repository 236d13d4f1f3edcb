# Every target sets up what it needs: a fresh clone only needs python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/safelinks serve

test: $(STAMP)
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/click_path.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy shared proxy safelinks manifest bot console

clean:
	rm -rf $(VENV) var .cache
