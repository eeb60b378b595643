# The two commands a newcomer needs: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PORT   ?= 3000
export PYTHONPATH := $(CURDIR)

.PHONY: venv test models serve bench bench-compare bench-paths lint typecheck build clean loadtest container science

$(VENV)/.installed: pyproject.toml requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q

# Train the reference models only when the store has none of a family.
models: venv
	$(PY) -m model_registry ensure

serve: models
	$(VENV)/bin/bentoml serve service:ArmorService --host 0.0.0.0 --port $(PORT)

# Physics checks of the served models (every input swept over its accepted range) and the
# out-of-distribution interval coverage (train on a restricted region, test outside it).
science: models
	$(PY) -m model_registry.sweep --json docs/science-sweep.json
	$(PY) -m model_registry.ood --json docs/science-ood.json
	$(PY) -m model_registry.routes --json docs/science-routes.json --plot docs/hardness-load-curves.png

bench: venv
	$(PY) -m features.bench
	$(PY) -m model_registry.bench
	$(PY) -m runners.wake_bench

# Issue 12's table (~9 min): the service, the same code in plain uvicorn and a naive FastAPI + forest, under wrk.
bench-compare: models
	$(PY) -m loadtests.side_by_side --targets service,in-process,naive --rounds 3 --duration 10 --json docs/bench-compare.json

# What each way in costs: /api/v1/predict/mechanical against BentoML's typed /predict_mechanical (~2 min).
bench-paths: models
	$(PY) -m loadtests.paths_bench --rounds 3 --duration 8 --json docs/paths-bench.json

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy over the packages listed in pyproject.toml ([tool.mypy], with the pydantic plugin).
typecheck: venv
	$(VENV)/bin/mypy

build: models
	$(VENV)/bin/bentoml build

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info

# Load tests: builds the Bento and serves it on a free port unless HOST is given.
loadtest: models
	$(PY) -m loadtests.run $(if $(HOST),--host $(HOST))

# Container image (Podman or Docker, whichever runs); see deploy/README.md.
container: models
	bash deploy/container.sh

# Three instances + one Redis + HAProxy on this machine, its load test (kill an instance, restart
# Redis), and the offline checks of the Kubernetes manifests; see docs/deployment.md.
.PHONY: cluster-up cluster-down cluster-test k8s-check
cluster-up: models
	bash deploy/cluster.sh up

cluster-down:
	bash deploy/cluster.sh down

cluster-test: venv
	$(PY) -m loadtests.cluster

k8s-check: venv
	$(PY) -m pytest -q tests/test_deploy_k8s.py
