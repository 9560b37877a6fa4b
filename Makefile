# daily-mlops: `make demo` runs the whole loop on real data; `make test` runs the suite.
# Both create .venv and install the project first (torch CPU 2.13.0 before anything else,
# so pip never pulls a CUDA build).

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Where pip finds torch: empty uses the configured index. On a laptop without a GPU a standard index serves the
# CUDA build (several GB); the CPU build: make install TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=
TORCH_INDEX := $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL),)

.PHONY: install demo lint test test-fast test-faults test-backfill-week airflow stack env compose-config bench clean-state

# pip shows its progress (downloads, builds): a first install takes about a minute.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --progress-bar on --upgrade pip
	$(PY) -m pip install --progress-bar on "torch==2.13.0" $(TORCH_INDEX)
	$(PY) -m pip install --progress-bar on -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/daily-mlops demo

# ruff (rules in pyproject.toml, the whole repo) and mypy (src/). `make test` runs it first, so CI (.ci/run) fails
# on a finding; $(VENV)/bin/pytest runs the tests alone.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# One line per test as it finishes (-v), the ten slowest at the end.
PYTEST_PROGRESS := -v --durations=10

# The native stack's fault tests (a worker SIGKILLed mid-retraining, MongoDB down for 20 s) take ~7 min more
# than the 20-minute budget of `make test` allows: `make test-faults` runs them.
test: install lint
	$(VENV)/bin/pytest -m "not stack_faults" $(PYTEST_PROGRESS) $(PYTEST_ARGS)

test-faults: install
	$(VENV)/bin/pytest -m stack_faults -s $(PYTEST_PROGRESS) $(PYTEST_ARGS)

test-fast: install
	$(VENV)/bin/pytest -m "not slow and not dags" $(PYTEST_PROGRESS) $(PYTEST_ARGS)

# The 7-date Airflow backfill compared with `daily-mlops run --days 7` (about 25 minutes; make test runs 2 dates).
test-backfill-week: install
	$(VENV)/bin/pytest -m backfill_week $(PYTEST_PROGRESS) $(PYTEST_ARGS)

airflow: install
	$(VENV)/bin/daily-mlops airflow

# The docker-compose topology without Docker: CeleryExecutor, Postgres and Redis (Debian packages, installed
# with apt-get when missing and root), two Celery workers; prints the UI address and login; Ctrl-C stops all.
STACK_PORT ?= 8080
stack: install
	$(VENV)/bin/daily-mlops stack --port $(STACK_PORT)

env: install
	$(PY) scripts/generate_env.py

compose-config:
	docker-compose --env-file .env.example config -q && echo "docker-compose.yml is valid"

# One section: make bench BENCH_ARGS=tasks (sections: benchmarks/__main__.py's docstring).
BENCH_ARGS ?=
bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)

# Removes the local demo state (embedded MongoDB, Airflow metadata DB, deployed model).
clean-state:
	rm -rf data/mongo airflow models/deployed
