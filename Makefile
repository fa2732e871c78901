# genspot: the two commands of the quick start are `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUNDLE ?= bundles/default
CHECKPOINT ?= training/weights/default.pt
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install serve test bundle bench loadtest clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The default bundle is built from the committed default checkpoint the first time. It is
# exported in fp32: its cost is the fp32 pixel branch, and its bf16 export misses the 0.02
# parity tolerance (max |delta p_ai| 0.025), so bf16 would buy little and fail the export.
BUNDLE_DTYPE ?= fp32
bundle: $(BUNDLE)/manifest.json

$(BUNDLE)/manifest.json: | $(STAMP)
	$(BIN)/genspot export torchscript --checkpoint $(CHECKPOINT) --out $(BUNDLE) --dtype $(BUNDLE_DTYPE)

serve: $(STAMP) bundle
	$(BIN)/genspot serve --bundle $(BUNDLE) --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP) bundle
	$(BIN)/genspot bench --bundle $(BUNDLE)

loadtest: $(STAMP) bundle
	$(BIN)/python -m tests.load.run --bundle $(BUNDLE)

clean:
	rm -rf $(VENV) bundles build *.egg-info .pytest_cache
