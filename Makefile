# scclust: `make demo` runs the pipeline on bundled test data, `make test` runs every test. Both set up first.
PYTHON ?= python3
VENV := .venv
NEXTFLOW ?= $(CURDIR)/$(VENV)/bin/nextflow
STAMP := $(VENV)/.scclust-setup
# `make setup EXTRAS=scvi` adds scvi-tools and torch (requirements/scvi.txt, ~5.4 GB installed) for --integration scvi.
# Their wheels are downloaded once into WHEELHOUSE and installed from there, so a fresh clone (CI) re-uses them.
EXTRAS ?=
WHEELHOUSE ?= $(HOME)/.cache/scclust/wheels
# tests/test_rsc_contract.py caches the pinned rapids-singlecell and cuGraph wheels (read, not installed) there too
export WHEELHOUSE
EXTRA_STAMPS := $(foreach extra,$(EXTRAS),$(VENV)/.scclust-$(extra))
export NXF_HOME ?= $(CURDIR)/.nextflow-home

.PHONY: setup demo test lint clean

setup: $(STAMP) $(EXTRA_STAMPS)

$(STAMP): pyproject.toml requirements/lock.txt requirements/dev.txt scripts/install_nextflow.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -r requirements/lock.txt -r requirements/dev.txt
	$(VENV)/bin/python -m pip install -q --no-deps -e .
	scripts/install_nextflow.sh $(VENV)
	touch $@

$(VENV)/.scclust-scvi: $(STAMP) requirements/scvi.txt
	$(VENV)/bin/python -m pip download -q --no-deps -d $(WHEELHOUSE) -r requirements/scvi.txt
	$(VENV)/bin/python -m pip install -q --no-deps --no-index --find-links $(WHEELHOUSE) -r requirements/scvi.txt
	$(VENV)/bin/python -m pip check
	touch $@

demo: setup
	$(VENV)/bin/python -m scclust.testdata tests/data/generated
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(NEXTFLOW) run main.nf -profile test -params-file assets/demo.yaml --outdir results/demo

test: setup
	$(VENV)/bin/ruff check src bin tests benchmarks
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH NEXTFLOW=$(NEXTFLOW) $(VENV)/bin/python -m pytest

lint: setup
	$(VENV)/bin/ruff check src bin tests benchmarks
	$(VENV)/bin/ruff format --check src bin tests benchmarks

clean:
	rm -rf work .nextflow .nextflow.log* results
