# The single entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTHON ?= python3

.PHONY: help quickstart venv dev install test test-rust test-python lint fix bench bench-quick dist dist-check clean

help:  ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(VENV)/bin/python

install: venv  ## Build and install the package (release) into the venv
	$(PIP) install -q .

quickstart: install  ## Install, then run examples/quickstart.py (timers firing in ./.kron)
	$(PY) examples/quickstart.py

dev: venv  ## Install test tools and the package into the venv
	$(PIP) install -q "pytest>=7" "pytest-timeout>=2" "mypy>=1.8" "ruff>=0.4" "gunicorn>=22" "selenium>=4.20"
	$(PIP) install -q .

lint: dev  ## Formatting and lints: cargo fmt, clippy -D warnings, ruff, mypy --strict
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/ruff check python tests examples
	$(VENV)/bin/mypy

fix:  ## Apply formatters
	cargo fmt --all
	-$(VENV)/bin/ruff check --fix python tests examples

test-rust:  ## Rust unit and integration tests
	cargo test --workspace --locked

# The cluster tests (tests/cluster: real three-node clusters, mostly waiting on elections and
# leases) run in a second pytest process alongside the rest, so they add little wall time.
test-python: dev  ## Python tests of the public API (the cluster tests in a parallel process)
	@log=$$(mktemp); $(VENV)/bin/pytest -q -p no:cacheprovider tests/cluster >"$$log" 2>&1 & pid=$$!; \
	$(VENV)/bin/pytest -q tests --ignore=tests/cluster; rest=$$?; \
	wait $$pid; cluster=$$?; echo "== tests/cluster"; cat "$$log"; rm -f "$$log"; \
	[ $$rest -eq 0 ] && [ $$cluster -eq 0 ]

test: lint test-rust test-python  ## Everything CI runs

bench:  ## Side-by-side benchmark vs APScheduler 3.11, prints the table (~30 min; BENCH_ARGS="--quick")
	VENV=$(VENV) PYTHON=$(PYTHON) bash bench/run.sh $(BENCH_ARGS)

bench-quick:  ## Criterion benches of the hot paths, quick mode, no thresholds (CI)
	cargo bench -p kron-core -p kron-store --bench '*' --locked -- --quick --measurement-time 1 --noplot

# The wheel is built with zig as the C compiler and linker (the `ziglang` package from PyPI), so it
# links against glibc 2.17 whatever this machine's glibc is: manylinux2014, for any Linux x86_64
# with glibc >= 2.17 and CPython >= 3.9 (abi3). Its own target directory: zig-built objects would
# otherwise replace (and be replaced by) those of `make install` at every switch.
dist: venv  ## Build the release wheel (manylinux2014, abi3, stripped) and the sdist into dist/
	$(PIP) install -q "maturin>=1.5,<2" "ziglang>=0.13"
	rm -rf dist
	PATH="$(abspath $(VENV))/bin:$$PATH" CARGO_TARGET_DIR=target/dist $(VENV)/bin/maturin build --release --strip --zig \
		--compatibility manylinux2014 --out dist
	$(VENV)/bin/maturin sdist --out dist
	@ls -l dist

dist-check: dist  ## Build the wheel, then install and run it where no Rust toolchain exists
	VENV=$(VENV) PYTHON=$(PYTHON) bash tools/check_wheel.sh dist

clean:
	rm -rf $(VENV) target .kron dist
