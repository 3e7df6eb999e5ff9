# counterfeit: every target bootstraps .venv first (torch from the local wheel cache here).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test lint format bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The README's tour starts from this run's folder, runs/digits-dann.
demo: $(STAMP)
	$(VENV)/bin/counterfeit run digits-dann --out runs/digits-dann --overwrite
	@echo
	@echo "Next (the README's tour):"
	@echo "  $(VENV)/bin/counterfeit robustness --model runs/digits-dann/models/dann.pt2 --data mnistm-style --out runs/dann-robustness"
	@echo "  $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db    # then open http://127.0.0.1:5000"
	@echo "  $(VENV)/bin/counterfeit run digits-pixelda    # PixelDA: a generator makes the synthetic digits look real"

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=25

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/dann_digits.py --data-root ../shared/datasets --seeds 0-4 --resume

clean:
	rm -rf runs mlruns mlflow.db .pytest_cache
