# The two commands of a fresh machine (README): `make reproduce` and `make test`.
# Each creates .venv on first use and installs the exact pins of requirements.txt
# (torch==2.13.0 first, so no other package can pull a different torch build).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCALE  ?= small
DEVICE ?= auto

.PHONY: install reproduce test lab demo clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/llve reproduce --scale $(SCALE) --device $(DEVICE)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

demo: $(STAMP)
	$(BIN)/llve demo --scale $(SCALE)

clean:
	rm -rf build .pytest_cache
