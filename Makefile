# The two commands a newcomer needs: `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
# checkov and kubernetes-validate (tests/test_deploy_k8s.py) pin packages older than the service's lock.
TOOLS_VENV ?= .venv-tools
PY      = $(VENV)/bin/python
PORT   ?= 3000
PIP_VERSION = 26.3
export PYTHONPATH := $(CURDIR)

.PHONY: venv tools test models serve bench bench-compare bench-paths bench-warmup bench-log-faults bench-log-faults-sqlite lint typecheck build clean loadtest container science

# A venv with pip in it. Debian's python3 has no ensurepip until python3-venv is installed: then the
# venv is made without pip and deploy/bootstrap_pip.py fetches pip $(PIP_VERSION) from the package
# index (sha256-pinned), so a machine with only python3 and make gets there too.
define make-venv
	@if [ ! -x $(1)/bin/pip ]; then \
	  if $(PYTHON) -c 'import ensurepip' 2>/dev/null; then $(PYTHON) -m venv $(1); \
	  else echo "$(PYTHON) has no ensurepip (Debian: no python3-venv): bootstrapping pip $(PIP_VERSION) into $(1)"; \
	    $(PYTHON) -m venv --without-pip $(1) && $(1)/bin/python deploy/bootstrap_pip.py; fi; \
	fi
endef

$(VENV)/.installed: pyproject.toml requirements-dev.lock
	$(call make-venv,$(VENV))
	$(PY) -m pip install -q pip==$(PIP_VERSION)
	$(PY) -m pip install -q -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(TOOLS_VENV)/.installed: deploy/k8s/requirements-tools.txt
	$(call make-venv,$(TOOLS_VENV))
	PYTHONPATH= $(TOOLS_VENV)/bin/python -m pip install -q -r deploy/k8s/requirements-tools.txt  # not the project's egg-info
	touch $@

venv: $(VENV)/.installed

tools: $(TOOLS_VENV)/.installed

# Tests that need a system package (redis-server, postgresql, wrk, kubectl) are skipped outside CI, with one
# line per group at the end naming the command that enables it; with CI=true they fail instead.
test: venv tools
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

# Issue 29's hit rates: the first 1,000 requests of a replayed log after a restart, with and without the
# predictive warm-up, and a sweep with and without the prefetch (in-process, ~1 min).
bench-warmup: models
	$(PY) -m loadtests.warmup_bench --json docs/warmup-bench.json

# PostgreSQL killed during 60 s of traffic under bentoml serve: failed requests, rows dropped and written (~2 min).
bench-log-faults: models
	$(PY) -m loadtests.log_faults --seconds 60 --json docs/log-faults.json

# The SQLite file's disk filled during 60 s of traffic (a tmpfs of its own: root only; ~2 min).
bench-log-faults-sqlite: models
	$(PY) -m loadtests.log_faults --sqlite-disk-full --seconds 60 --json docs/log-faults-sqlite.json

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
	rm -rf $(VENV) $(TOOLS_VENV) .pytest_cache build dist *.egg-info

# Load tests: builds the Bento and serves it on a free port unless HOST is given.
loadtest: models
	$(PY) -m loadtests.run $(if $(HOST),--host $(HOST))

# Container image (Podman or Docker, whichever runs); see deploy/README.md.
container: models
	bash deploy/container.sh

# Three instances + one Redis + HAProxy on this machine, its load test (kill an instance, restart
# Redis), and the offline checks of the Kubernetes manifests; see docs/deployment.md.
.PHONY: cluster-up cluster-down cluster-test cluster-test-log bench-log-faults-cluster k8s-check
cluster-up: models
	bash deploy/cluster.sh up

cluster-down:
	bash deploy/cluster.sh down

cluster-test: venv
	$(PY) -m loadtests.cluster

# The prediction log behind the cluster, through HAProxy (~2 min; docs/prediction-log.md): run after
# `PREDICTION_LOG=true DATABASE_URL=postgresql://... make cluster-up`, with the same environment.
cluster-test-log: venv
	$(PY) -m loadtests.cluster_log --json docs/cluster-log.json

# PostgreSQL killed during 60 s of traffic through the cluster: starts and stops its own PostgreSQL
# and cluster (in CLUSTER_DIR, which must have none running), ~2 min.
bench-log-faults-cluster: models
	$(PY) -m loadtests.log_faults --cluster --seconds 60 --json docs/log-faults-cluster.json

k8s-check: venv tools
	$(PY) -m pytest -q tests/test_deploy_k8s.py
