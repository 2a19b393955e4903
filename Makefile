# roomcast — every contributor's commands. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The cargo target dir lives outside the clone so fresh clones (CI) reuse builds.
CARGO_TARGET_DIR ?= $(HOME)/.cache/roomcast-target
export CARGO_TARGET_DIR
CARGO ?= cargo
LISTEN ?= 127.0.0.1:3000

.PHONY: all build release demo test deps lint test-rust fmt clean

all: build

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release -p roomcast --bin roomcast

## make demo: build in release and serve the demo chat at http://$(LISTEN)/
demo: release
	@echo "roomcast demo: open http://$(LISTEN)/ (Ctrl-C to stop)"
	$(CARGO_TARGET_DIR)/release/roomcast serve --listen $(LISTEN)

## make test: install what is missing, then run every suite.
test: deps lint test-rust
	@echo "make test: all suites passed"

# Tools the suites need; each is installed only when missing.
deps:
	@command -v $(CARGO) >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust:
	$(CARGO) test --workspace --locked

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
