# Two commands on a fresh machine: `make run` (control plane in the foreground) and
# `make test` (the whole suite). Both install what is missing first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= .data
PORT ?= 6443
APT_PACKAGES := etcd-server etcd-client runc conmon skopeo golang-github-containers-common umoci docker-registry busybox-static iproute2 git openssh-client chromium chromium-driver \
	nftables containernetworking-plugins dnsmasq dnsperf wrk prometheus
# (../lib/cni/bridge: the CNI plugins live in /usr/lib/cni, off PATH)
APT_BINARIES := etcd etcdctl runc conmon skopeo umoci docker-registry busybox ip git ssh chromium chromedriver nft ../lib/cni/bridge dnsmasq dnsperf wrk prometheus
PYTEST_ARGS ?=
# the suite runs in two pytest-xdist workers, a test file each at a time (its module fixtures
# stay in one process); most integration tests wait on processes they started, so two overlap
# well on two cores (docs/status.md, "Tests"). PYTEST_WORKERS=0 runs it in this process.
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: install apt-deps run test unit integration lint-imports web-check bench clean

install: apt-deps $(VENV)/.installed web/dist/index.html

# the dashboard's front end (web/): node_modules from the lockfile, then the Vite build that
# `controlplane dashboard` serves (web/dist); both git-ignored
WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json
web/node_modules/.package-lock.json: web/package-lock.json
	@command -v npm >/dev/null || { echo "node and npm (Node >= 20.19) are needed for the dashboard's front end"; exit 1; }
	cd web && npm ci --no-audit --no-fund
web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	cd web && npm run build

apt-deps:
	@missing=""; for b in $(APT_BINARIES); do \
	  command -v $$b >/dev/null 2>&1 || [ -x /usr/bin/$$b ] || [ -x /usr/sbin/$$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing apt packages (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	  else \
	    echo "missing:$$missing -- run: sudo apt-get update && sudo apt-get install -y $(APT_PACKAGES)"; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# kopf's webhook examples make self-signed certificates with certbuilder/certvalidator, which
	# depend on "oscrypto"; oscrypto 1.3.0 cannot read OpenSSL 3.0.10+ version strings (fixed upstream,
	# unreleased): elements-oscrypto (from pyproject) is that fix, so these two come without deps
	$(BIN)/pip install -q --no-deps certbuilder certvalidator
	@touch $@

run: install
	$(BIN)/controlplane up --data-dir $(DATA_DIR) --port $(PORT)

# import contracts first (pyproject.toml [tool.importlinter]), then the suite; the 30 slowest
# tests are printed at the end, to keep the suite inside its 30-minute budget (docs/status.md)
test: install lint-imports web-check
	$(BIN)/python -m pytest $(XDIST) --durations=30 $(PYTEST_ARGS)

# the front end: eslint, vue-tsc type check, vitest unit tests
web-check: install
	cd web && npm run lint && npm run typecheck && npm test

lint-imports: install
	$(BIN)/lint-imports

unit: install
	$(BIN)/python -m pytest $(XDIST) tests/unit $(PYTEST_ARGS)

integration: install
	$(BIN)/python -m pytest $(XDIST) tests/integration $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache web/node_modules web/dist test-artifacts
