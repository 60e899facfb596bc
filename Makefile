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

# `.py` notebooks open as notebooks on double-click: jupytext-config makes "Jupytext Notebook"
# the default viewer (idempotent: it keeps existing choices). The setting goes into the venv's
# Jupyter config folder (<venv>/etc/jupyter, on JupyterLab's config path), never into $HOME.
LABCONFIG := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupytext-config --settings-file $(LABCONFIG) set-default-viewer
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks

demo: $(STAMP)
	$(BIN)/llve demo --scale $(SCALE)

clean:
	rm -rf build .pytest_cache
