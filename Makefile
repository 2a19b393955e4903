# roomcast — every contributor's commands. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The cargo target dir lives outside the clone so fresh clones (CI) reuse builds.
CARGO_TARGET_DIR ?= $(HOME)/.cache/roomcast-target
export CARGO_TARGET_DIR
CARGO ?= cargo
LISTEN ?= 127.0.0.1:3000
VENV ?= $(CURDIR)/.venv
PYTHON ?= python3
INTEROP := tests/interop
NODE_PKG := node
WHEEL_VENV ?= $(CURDIR)/.venv-wheel
WHEEL_DIR ?= $(CARGO_TARGET_DIR)/wheels
# The Python suite's dependencies as wheels, downloaded once per requirements change.
WHEELHOUSE ?= $(HOME)/.cache/roomcast-wheelhouse
# Where test-node packs the npm package and installs it into a fresh project.
PACK_DIR ?= $(CURDIR)/target-pack
# Interop tests find the real clients through these.
export ROOMCAST_PYTHON := $(VENV)/bin/python

.PHONY: all build release demo demo-cluster web-chat web-react test-browser deps-browser test deps deps-rust deps-node deps-python deps-redis lint test-rust test-python wheel node test-node \
	c-lib install test-c fmt clean \
	fuzz soak bench bench-quick bench-b4 bench-deps bench-deps-system bench-deps-socketioxide bench-deps-roomcast-py bench-build

all: build

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --release -p roomcast --bin roomcast

## make demo: build in release and serve the demo chat (examples/web/chat) at http://$(LISTEN)/
WEB_CHAT := examples/web/chat
WEB_REACT := examples/web/react
DEMO_ARGS := --chat --static $(WEB_CHAT) --recovery-window-ms 120000
demo: release web-chat
	@echo "roomcast demo: open http://$(LISTEN)/ (Ctrl-C to stop)"
	$(CARGO_TARGET_DIR)/release/roomcast serve --listen $(LISTEN) $(DEMO_ARGS)

## make demo-cluster: a redis-server and two nodes (http://127.0.0.1:3000/ and :3001/) serving the chat
demo-cluster: release web-chat deps-redis
	$(WEB_CHAT)/cluster.sh $(CARGO_TARGET_DIR)/release/roomcast $(DEMO_ARGS)

# socket.io-client's browser bundle, from npm, where the chat page loads it.
web-chat: $(WEB_CHAT)/vendor/socket.io.min.js
$(WEB_CHAT)/vendor/socket.io.min.js: $(WEB_CHAT)/package.json $(WEB_CHAT)/package-lock.json
	npm ci --prefix $(WEB_CHAT) --no-audit --no-fund --silent
	mkdir -p $(@D)
	cp $(WEB_CHAT)/node_modules/socket.io-client/dist/socket.io.min.js $@

## make web-react: the React example built by vite into examples/web/react/dist (its vitest suite first)
web-react: $(WEB_REACT)/node_modules/.installed
	cd $(WEB_REACT) && npx vitest run && npx vite build --logLevel warn
$(WEB_REACT)/node_modules/.installed: $(WEB_REACT)/package.json $(WEB_REACT)/package-lock.json
	npm ci --prefix $(WEB_REACT) --no-audit --no-fund --silent
	touch $@

## make test: install what is missing, then run every suite.
test: deps lint test-rust test-python test-node test-c test-browser
	@echo "make test: all suites passed"

# Tools the suites need; each is installed only when missing or outdated.
deps: deps-rust deps-node deps-python deps-redis deps-browser

# The cluster suites start their own redis-server processes on free ports.
deps-redis:
	@command -v redis-server >/dev/null || { apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq redis-server; }; }
	@command -v redis-server >/dev/null || { echo "redis-server is required (apt-get install redis-server)"; exit 1; }

# Debian's Chromium for the browser suites (never a downloaded browser), and playwright-core.
deps-browser: tests/browser/node_modules/.installed
	@command -v chromium >/dev/null || { apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq chromium; }; }
	@command -v chromium >/dev/null || { echo "chromium is required (apt-get install chromium)"; exit 1; }
tests/browser/node_modules/.installed: tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent
	touch $@

deps-rust:
	@command -v $(CARGO) >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
	@rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# socket.io and socket.io-client from npm, exactly as locked; the Node
# package's dev dependencies (napi-rs CLI, socket.io-client, ws, TypeScript).
deps-node: $(INTEROP)/node_modules/.installed $(NODE_PKG)/node_modules/.installed
$(NODE_PKG)/node_modules/.installed: $(NODE_PKG)/package.json $(NODE_PKG)/package-lock.json
	@command -v npm >/dev/null || { echo "node and npm are required (apt-get install nodejs npm)"; exit 1; }
	# `npm install`, not `npm ci`: the registry lacks the other platforms'
	# optional packages of @napi-rs/lzma (a CLI dependency), so the lock file
	# cannot list them and `npm ci` would call it out of sync.
	npm install --prefix $(NODE_PKG) --no-audit --no-fund
	touch $@
$(INTEROP)/node_modules/.installed: $(INTEROP)/package.json $(INTEROP)/package-lock.json
	@command -v npm >/dev/null || { echo "node and npm are required (apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix $(INTEROP) --no-audit --no-fund
	touch $@

# python-socketio and friends from PyPI in a venv of the project's own.
# maturin builds the wheel; the Python suite runs in a venv made afresh on
# every run with that wheel installed (not a develop build of the source tree).
deps-python: $(VENV)/.installed $(WHEELHOUSE)/.installed
$(VENV)/.installed: $(INTEROP)/requirements.txt python/requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -r $(INTEROP)/requirements.txt -r python/requirements-test.txt
	touch $@
$(WHEELHOUSE)/.installed: python/requirements-test.txt $(VENV)/.installed
	$(VENV)/bin/python -m pip wheel -q -r python/requirements-test.txt -w $(WHEELHOUSE)
	touch $@

## make wheel: the release abi3 wheel of the Python package, into $(WHEEL_DIR).
wheel: $(VENV)/.installed
	rm -f $(WHEEL_DIR)/roomcast-*.whl
	cd python && $(VENV)/bin/maturin build --release --quiet --out $(WHEEL_DIR)

test-python: wheel $(WHEELHOUSE)/.installed
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv --without-pip $(WHEEL_VENV)
	$(VENV)/bin/python -m pip --python $(WHEEL_VENV)/bin/python install -q --no-index --find-links $(WHEELHOUSE) \
	  -r python/requirements-test.txt $(WHEEL_DIR)/roomcast-*.whl
	$(WHEEL_VENV)/bin/python -m pytest -q python/tests
	# The committed stub matches the extension; the package type-checks strictly.
	MYPY_CACHE_DIR=$(CARGO_TARGET_DIR)/mypy $(WHEEL_VENV)/bin/python -m mypy.stubtest roomcast._native
	MYPY_CACHE_DIR=$(CARGO_TARGET_DIR)/mypy $(WHEEL_VENV)/bin/python -m mypy --strict -p roomcast

## make node: the release addon of the Node package (node/roomcast.<platform>.node), with
## napi-rs's generated loader (node/native.js) and its types (node/native.d.ts).
node: $(NODE_PKG)/node_modules/.installed
	cd $(NODE_PKG) && npm run --silent build

# The committed loader and types must be what the build generates; the suite
# runs from the source tree, the typed example type-checks, and the packed
# tarball installed in a fresh project runs examples/node/chat.mjs.
test-node: node
	git diff --exit-code -- $(NODE_PKG)/native.js $(NODE_PKG)/native.d.ts || \
	  { echo "node/native.js or native.d.ts changed: commit the regenerated files"; exit 1; }
	cd $(NODE_PKG) && node --test --test-timeout=60000 test/
	cd $(NODE_PKG) && node_modules/.bin/tsc -p tsconfig.json
	rm -rf $(PACK_DIR) && mkdir -p $(PACK_DIR)/app
	cd $(NODE_PKG) && npm pack --silent --pack-destination $(PACK_DIR) >/dev/null
	cd $(PACK_DIR)/app && npm init -y >/dev/null && \
	  npm install --silent --no-audit --no-fund $(PACK_DIR)/roomcast-*.tgz
	cp examples/node/chat.mjs $(PACK_DIR)/app/
	ROOMCAST_EXAMPLE=$(PACK_DIR)/app/chat.mjs node --test $(NODE_PKG)/pack-test/

## make c-lib: libroomcast.so and libroomcast.a (release) for the C API (include/roomcast.h).
## make install PREFIX=/usr/local: header, libraries (versioned soname) and roomcast.pc.
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
SONAME := libroomcast.so.$(word 1,$(subst ., ,$(VERSION))).$(word 2,$(subst ., ,$(VERSION)))
C_LIB := $(CARGO_TARGET_DIR)/release/libroomcast
c-lib:
	$(CARGO) build --release --locked -p roomcast-c

install: c-lib
	install -d $(PREFIX)/include $(PREFIX)/lib/pkgconfig
	install -m 644 include/roomcast.h $(PREFIX)/include/roomcast.h
	install -m 755 $(C_LIB).so $(PREFIX)/lib/libroomcast.so.$(VERSION)
	ln -sf libroomcast.so.$(VERSION) $(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(PREFIX)/lib/libroomcast.so
	install -m 644 $(C_LIB).a $(PREFIX)/lib/libroomcast.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' bindings/c/roomcast.pc.in > $(PREFIX)/lib/pkgconfig/roomcast.pc

# The C API as a C program sees it: installed into a staging prefix, found
# with pkg-config, examples linked shared and static, the contract test under
# ASan+UBSan and valgrind, the header as C++, the example servers driven by
# the real socket.io-client and a JSON-protocol client, two chat servers in
# a cluster on a redis-server of the test's own.
C_STAGE := $(CARGO_TARGET_DIR)/c-stage
C_OUT := $(CARGO_TARGET_DIR)/c-test
C_STRICT := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pedantic -g
C_PC = PKG_CONFIG_PATH=$(C_STAGE)/lib/pkgconfig pkg-config
test-c: deps-node deps-redis
	@command -v valgrind >/dev/null || { command -v apt-get >/dev/null && apt-get install -y -qq valgrind; }
	@pkg-config --exists libcjson || { command -v apt-get >/dev/null && apt-get install -y -qq libcjson-dev; }
	$(MAKE) --no-print-directory install PREFIX=$(C_STAGE)
	mkdir -p $(C_OUT)
	echo '#include <roomcast.h>' | g++ -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c++ $$($(C_PC) --cflags roomcast) -
	for ex in chat_server epoll_server client; do \
	  cc $(C_STRICT) examples/c/$$ex.c -o $(C_OUT)/$$ex $$($(C_PC) --cflags --libs roomcast) -Wl,-rpath,$(C_STAGE)/lib; \
	  cc $(C_STRICT) examples/c/$$ex.c -o $(C_OUT)/$$ex-static $$($(C_PC) --cflags roomcast) \
	    -L$(C_STAGE)/lib -l:libroomcast.a $$($(C_PC) --libs-only-other --static roomcast) -lpthread -ldl -lm; \
	done
	# The chat app of every language's examples, with cJSON (Debian's libcjson-dev).
	cc $(C_STRICT) examples/c/chat.c -o $(C_OUT)/chat $$($(C_PC) --cflags --libs roomcast libcjson) -Wl,-rpath,$(C_STAGE)/lib
	cc $(C_STRICT) examples/c/chat.c -o $(C_OUT)/chat-static $$($(C_PC) --cflags roomcast libcjson) \
	  -L$(C_STAGE)/lib -l:libroomcast.a $$($(C_PC) --libs-only-other --static roomcast) -lcjson -lpthread -ldl -lm
	cc $(C_STRICT) -fsanitize=address,undefined -fno-omit-frame-pointer examples/c/chat.c \
	  -o $(C_OUT)/chat-asan $$($(C_PC) --cflags --libs roomcast libcjson) -Wl,-rpath,$(C_STAGE)/lib
	cc $(C_STRICT) -fsanitize=address,undefined -fno-omit-frame-pointer bindings/c/tests/c/api_test.c \
	  -o $(C_OUT)/api_test-asan $$($(C_PC) --cflags --libs roomcast) -Wl,-rpath,$(C_STAGE)/lib
	cc $(C_STRICT) -fsanitize=address,undefined -fno-omit-frame-pointer examples/c/chat_server.c \
	  -o $(C_OUT)/chat_server-asan $$($(C_PC) --cflags --libs roomcast) -Wl,-rpath,$(C_STAGE)/lib
	cc $(C_STRICT) bindings/c/tests/c/api_test.c -o $(C_OUT)/api_test $$($(C_PC) --cflags --libs roomcast) -Wl,-rpath,$(C_STAGE)/lib
	UBSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 $(C_OUT)/api_test-asan
	valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite $(C_OUT)/api_test
	ROOMCAST_C_SERVERS="$(addprefix $(C_OUT)/,chat_server chat_server-static chat_server-asan epoll_server epoll_server-static)" \
	UBSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
	ROOMCAST_C_CLIENT="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --suppressions=bindings/c/tests/c/valgrind.supp $(C_OUT)/client" \
	ROOMCAST_C_CHAT="$(addprefix $(C_OUT)/,chat chat-static chat-asan)" \
	  node --test $(INTEROP)/node/c_servers.test.mjs $(INTEROP)/node/c_cluster.test.mjs $(INTEROP)/node/c_example.test.mjs

# The demo chat and the React example in headless Chromium (tests/browser);
# screenshots go to $(BROWSER_ARTIFACTS).
BROWSER_ARTIFACTS ?= $(CURDIR)/target-artifacts/browser
test-browser: deps-browser deps-redis web-chat web-react
	$(CARGO) build --locked -p roomcast --bin roomcast
	rm -rf $(BROWSER_ARTIFACTS)
	ROOMCAST_BIN=$(CARGO_TARGET_DIR)/debug/roomcast ROOMCAST_ARTIFACTS=$(BROWSER_ARTIFACTS) \
	  node --test --test-timeout=120000 tests/browser/
	@echo "screenshots: $(BROWSER_ARTIFACTS)"

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust:
	$(CARGO) test --workspace --locked

fmt:
	$(CARGO) fmt --all

## make soak: `roomcast serve` under 10,000 churning connections (JSON protocol and Socket.IO over WebSocket)
## for 12 minutes, outside make test; memory, fds, tasks, connections and recovery sessions over time into
## bench/results/soak/ (SOAK.md, soak.png, samples.json). Fails on a leak or a vanished client not reaped. SOAK_ARGS passes options, e.g. SOAK_ARGS="--seconds 120".
SOAK_ARGS ?=
soak: bench-deps-system
	$(CARGO) build --release --locked -p roomcast --bin roomcast -p roomcast-bench --bin roomcast-soak
	$(CARGO_TARGET_DIR)/release/roomcast-soak --server $(CARGO_TARGET_DIR)/release/roomcast $(SOAK_ARGS)

## make fuzz: every cargo-fuzz target (fuzz/) for FUZZ_SECONDS each (nightly, libFuzzer); what they keep
## grows fuzz/corpus/<target>/ (minimized afterwards), which make test replays (core/tests/fuzz_corpus.rs).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= engineio polling_body socketio json_protocol
FUZZ_TARGET_DIR ?= $(HOME)/.cache/roomcast-fuzz-target
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
	rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  cargo +nightly fuzz run --target-dir $(FUZZ_TARGET_DIR) $$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 -rss_limit_mb=2048 && \
	  cargo +nightly fuzz cmin --target-dir $(FUZZ_TARGET_DIR) $$t corpus/$$t; \
	done

 (bench/APP.md, issue 4: B1-B4); results in bench/results/.
## BENCH_ARGS passes options through, e.g. BENCH_ARGS="--peers roomcast-sio,node-sio --runs 1".
# The socketioxide peer is its own cargo project (outside the workspace), built in its own target dir.
PEERS_TARGET_DIR ?= $(HOME)/.cache/roomcast-peers-target
BENCH_NODE := bench/peers/node
BENCH_ARGS ?=
export ROOMCAST_PEERS_TARGET_DIR := $(PEERS_TARGET_DIR)
export ROOMCAST_BENCH_PYTHON := $(VENV)/bin/python

bench: bench-deps bench-build
	$(CARGO_TARGET_DIR)/release/roomcast-bench run $(BENCH_ARGS)

## make bench-quick: tiny parameters (100 subscribers, 2 s, 1 run, 1000 idle clients), for development.
bench-quick: bench-deps bench-build
	$(CARGO_TARGET_DIR)/release/roomcast-bench run --quick $(BENCH_ARGS)

## make bench-b4: only B4 (2 nodes + Redis; roomcast and socket.io + @socket.io/redis-adapter), updated in
## bench/results/ beside the other scenarios' runs; BENCH_ARGS="--quick" for tiny parameters (into another
## --results directory: a quick B4 is not merged into full results).
bench-b4: bench-deps-system deps-redis $(BENCH_NODE)/node_modules/.installed bench-build
	$(CARGO_TARGET_DIR)/release/roomcast-bench run --only b4 $(BENCH_ARGS)

# B4 starts its own redis-server processes (deps-redis installs Debian's redis-server).
bench-deps: bench-deps-system deps-redis $(BENCH_NODE)/node_modules/.installed $(VENV)/.bench-installed \
	bench-deps-socketioxide bench-deps-roomcast-py

# taskset pins server and generator to their cores; DejaVu Sans is the charts' font.
bench-deps-system:
	@command -v taskset >/dev/null && test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || { \
	  command -v apt-get >/dev/null || { echo "install taskset (util-linux) and the DejaVu fonts"; exit 1; }; \
	  apt-get update -qq && apt-get install -y -qq util-linux fonts-dejavu-core; }

# socket.io (and for B4 @socket.io/redis-adapter with the redis client) and ws from npm, exactly as locked.
$(BENCH_NODE)/node_modules/.installed: $(BENCH_NODE)/package.json $(BENCH_NODE)/package-lock.json
	@command -v npm >/dev/null || { echo "node and npm are required (apt-get install nodejs npm)"; exit 1; }
	npm ci --prefix $(BENCH_NODE) --no-audit --no-fund
	touch $@

# python-socketio on aiohttp, in the project's venv.
$(VENV)/.bench-installed: bench/peers/python/requirements.txt $(VENV)/.installed
	$(VENV)/bin/python -m pip install -q -r bench/peers/python/requirements.txt
	touch $@

# B5: the roomcast-py peer imports the freshly built wheel.
bench-deps-roomcast-py: wheel $(VENV)/.installed
	$(VENV)/bin/python -m pip install -q --force-reinstall --no-deps $(WHEEL_DIR)/roomcast-*.whl

bench-deps-socketioxide:
	CARGO_TARGET_DIR=$(PEERS_TARGET_DIR) $(CARGO) build --release --locked --manifest-path bench/peers/socketioxide/Cargo.toml

bench-build:
	$(CARGO) build --release --locked -p roomcast-bench

clean:
	$(CARGO) clean
