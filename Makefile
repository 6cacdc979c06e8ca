# make report   set up .venv if needed, run the model over SQuAD 2.0, score it, write the run and its HTML report
# make test     set up .venv if needed, run the test suite (what CI runs)
# make test-fast  the fast lane while working: everything but notebooks, Ray and slow tests (about a minute)
#
# Overrides: make report MODEL=<hub id or dir> DATA=<hub name or file> TITLES=<a,b> LIMIT=<n> RUN=<dir>
#            RUNTIME=openvino DTYPE=int8 CALIBRATION=<file>   (the fast way on a CPU; see README "Speed")

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MODEL  ?= nbroad/xdistil-l12-h384-squad2
DATA   ?= squad_v2
LIMIT  ?=
TITLES ?=
RUN    ?=
RUNTIME ?= torch
DTYPE  ?= float32
CALIBRATION ?=
STAMP  := $(VENV)/.installed

.PHONY: install report test test-fast bench clean

install: $(STAMP)

# torch is installed first and pinned: the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,ray,openvino]'
	@# notebooks run in JupyterLab never show in git status or a commit: outputs stripped by a git filter
	-git rev-parse --git-dir >/dev/null 2>&1 && $(BIN)/nbstripout --install && \
		git config filter.nbstripout.clean "'$(abspath $(BIN))/python' -m nbstripout --keep-id" && \
		git config filter.nbstripout.extrakeys "metadata.language_info"
	touch $(STAMP)

# XDANALYSIS_VIA_MAKE: errors name MODEL=, DATA=, ... (what was typed here), not the CLI's flags.
report: $(STAMP)
	XDANALYSIS_VIA_MAKE=1 $(BIN)/xdanalysis evaluate --report --model $(MODEL) --data $(DATA) \
		$(if $(TITLES),--titles $(TITLES)) $(if $(LIMIT),--limit $(LIMIT)) $(if $(RUN),--out $(RUN)) \
		--runtime $(RUNTIME) --dtype $(DTYPE) $(if $(CALIBRATION),--calibration-data $(CALIBRATION))

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not notebooks and not ray"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_inference.py --model $(MODEL) --data $(DATA) $(if $(TITLES),--titles $(TITLES)) \
		$(if $(LIMIT),--limit $(LIMIT))

clean:
	rm -rf $(VENV) runs .pytest_cache
