# Ironmesh developer commands. `make run` and `make test` need only the Rust toolchain;
# `make lint`/`make proto-lint` also install buf from npm into .tools/ on first use.

CARGO ?= cargo
BUF_VERSION ?= 1.75.0
BUF := .tools/node_modules/.bin/buf

.PHONY: run test lint clippy fmt fmt-check proto-lint build bench

## run: all six services and the gateway in one process (SQLite under ./data)
run:
	$(CARGO) run --bin ironmesh -- up

## test: every test in the workspace (PostgreSQL/Redis variants when TEST_DATABASE_URL/TEST_REDIS_URL are set)
test:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

## lint: formatting, clippy (warnings are errors), buf lint
lint: fmt-check clippy proto-lint

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

$(BUF):
	mkdir -p .tools
	npm install --silent --no-save --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION)

## proto-lint: buf lint (STANDARD, google/ ignored) over proto/
proto-lint: $(BUF)
	$(BUF) lint
	$(BUF) build -o /dev/null

build:
	$(CARGO) build --workspace --all-targets

## bench: stack, auth, gateway, events, orders, notification and provisioning costs as ratios against baselines measured in the same run (BENCH_ARGS="--suite stack|auth|gateway|events|orders|notification|provisioning --json"; events, orders, notification and provisioning also on PostgreSQL when BENCH_DATABASE_URL names a server; installs h2load and wrk with apt-get if missing)
bench:
	@command -v h2load >/dev/null 2>&1 || { \
		echo "h2load missing: installing nghttp2-client"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nghttp2-client; \
	}
	@command -v wrk >/dev/null 2>&1 || { \
		echo "wrk missing: installing wrk"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y -qq wrk || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk; }; \
	}
	$(CARGO) build --release --bin ironmesh-bench --bin ironmesh-bench-alloc
	$${CARGO_TARGET_DIR:-target}/release/ironmesh-bench $(BENCH_ARGS)
