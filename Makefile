# Feedback Loop. Two commands on a fresh machine with Rust and Python 3:
#   make run    the whole system locally (moto started for you) on 127.0.0.1:3000
#   make test   every test: unit, property, moto-backed adapter/handler, end to end, browser, template lint
# and `make demo`: `make run` with five weeks of generated feedback seeded (dashboard, digest).
#
# Build output and the Python venv live outside the clone so fresh clones (CI) reuse them.
CACHE            ?= $(HOME)/.cache/feedback-loop
VENV             ?= $(CACHE)/venv
export CARGO_TARGET_DIR ?= $(CACHE)/target
export FEEDBACK_VENV    := $(VENV)
export CARGO_TERM_COLOR ?= never
PY               := $(VENV)/bin/python
STAMP            := $(VENV)/.installed-$(shell cat infra/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: run demo test venv build browser lint-template lint deny bench sam-build clean-cache fuzz toolchain models chart-font

# The pinned toolchain (rust-toolchain.toml). rustup installs it where it can download; on an
# offline machine whose stable is that very version, the installed one is linked under its name
# (rustup's `toolchain link` refuses official names, so the link is made in its toolchains folder).
TOOLCHAIN        := $(shell sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
toolchain:
	@if command -v rustup >/dev/null && ! rustup toolchain list | grep -q "^$(TOOLCHAIN)"; then \
	  if rustc +stable --version 2>/dev/null | grep -q "^rustc $(TOOLCHAIN) "; then \
	    echo "linking the installed stable as toolchain $(TOOLCHAIN)"; \
	    ln -s "$$(rustc +stable --print sysroot)" \
	      "$${RUSTUP_HOME:-$$HOME/.rustup}/toolchains/$(TOOLCHAIN)-$$(rustc +stable -vV | sed -n 's/^host: //p')"; fi; fi

run: toolchain $(STAMP)
	cargo build --workspace --bins
	$(CARGO_TARGET_DIR)/debug/feedback-local

demo: toolchain $(STAMP)
	cargo build --workspace --bins
	DEMO=1 $(CARGO_TARGET_DIR)/debug/feedback-local

# Checks on the team's data (../shared/data, or FEEDBACK_DATA) run where it is, as in CI; a plain
# clone skips them and says so.
TEAM_DATA        ?= $(or $(FEEDBACK_DATA),../shared/data)

test: toolchain $(STAMP) lint-template browser
	cargo build --workspace --bins
	@if [ -d "$(TEAM_DATA)" ]; then cargo test --workspace --no-fail-fast; \
	elif [ -n "$$CI" ]; then echo "CI needs the team data folder: $(TEAM_DATA) is not here"; exit 1; \
	else echo "NOT RUN: the checks on the team data (needs_team_data::*): $(TEAM_DATA) is not here"; \
	  cargo test --workspace --no-fail-fast -- --skip needs_team_data; fi

# The dashboard's browser test needs Chromium and a CJK font (as a staff computer has one: the
# test checks Chinese is not drawn as boxes): Debian's chromium and fonts-noto-cjk, installed here
# when missing (as root, as in CI); otherwise say how. CHROMIUM=/path/to/chrome uses another one.
browser:
	@missing=""; \
	if [ -z "$$CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then missing="chromium"; fi; \
	if ! fc-list :lang=zh 2>/dev/null | grep -q .; then missing="$$missing fonts-noto-cjk"; fi; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing$$missing for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "The browser test needs:$$missing (sudo apt-get install$$missing; CHROMIUM=/path/to/chrome for another browser)"; exit 1; fi

venv: $(STAMP)

$(STAMP): infra/requirements.txt
	@command -v python3 >/dev/null || { echo "python3 is required"; exit 1; }
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Zero findings, with and without the serverless rules (template path before -a: -a swallows the rest).
lint-template: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules

lint: toolchain lint-template deny
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	@# The layers, checked: the one domain crate depends on no AWS, Lambda or async-runtime crate.
	@if cargo tree -p feedback-domain -e normal --prefix none | grep -E '^(aws|lambda|tokio|hyper)'; then \
	  echo "feedback-domain must not depend on AWS, Lambda or runtime crates (see ARCHITECTURE.md)"; exit 1; fi

# Licences, banned crates and sources of every dependency (deny.toml); security advisories too
# where the advisory database can be fetched (it lives on GitHub: not reachable offline).
DENY_VERSION     := 0.20.2
deny: toolchain
	@command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --version $(DENY_VERSION)
	cargo deny --all-features check bans licenses sources
	@if cargo deny fetch db >/dev/null 2>&1; then cargo deny check advisories; \
	else echo "NOT RUN: cargo deny check advisories (the advisory database could not be fetched)"; fi

# Release build of the functions, then size, cold start and peak RSS on a local Lambda Runtime API.
bench: toolchain $(STAMP)
	cargo build --release --workspace --bins
	$(CARGO_TARGET_DIR)/release/lambda-bench

# SAM build as AWS will run it (cargo-lambda + zig cross-compile to arm64). Slow: compiles per function.
sam-build: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r infra/requirements-deploy.txt
	PATH="$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} sam build

# Retrain the chat model with staff corrections, and ship it only through the gate: no worse on any
# fixed set (JDDC dev, the chatbot users' test split), better on the corrections. CORRECTIONS is a
# file from `feedback export-corrections` (TABLE_NAME and AWS credentials of the deployed stack).
# On SHIP the candidate replaces shared/domain/models/chat-zh.bin: rebuild, test, commit it with
# the gate's report in models/CHAT.md. On KEEP nothing changes (and make says so with exit 1).
models: toolchain
	@test -n "$(CORRECTIONS)" || { echo "make models CORRECTIONS=<file from feedback export-corrections>"; exit 2; }
	cargo build --release -p feedback-infra --bin feedback
	$(CARGO_TARGET_DIR)/release/feedback train-chat $(CACHE)/chat-candidate.bin $(TEAM_DATA) shared/labels/jddc_turns.tsv \
	  --extra shared/labels/stc3_turns.tsv --written shared/labels/written_sessions.tsv --corrections $(CORRECTIONS)
	$(CARGO_TARGET_DIR)/release/feedback gate $(CACHE)/chat-candidate.bin --corrections $(CORRECTIONS) $(TEAM_DATA)
	cp $(CACHE)/chat-candidate.bin shared/domain/models/chat-zh.bin

clean-cache:
	rm -rf $(CACHE)

# Coverage-guided fuzzing of the domain's parsers (nightly + cargo-fuzz: `cargo install cargo-fuzz`),
# FUZZ_SECONDS per target; not part of `make test` (the proptest fuzz there runs on stable).
FUZZ_SECONDS ?= 60
fuzz:
	cd shared/domain/fuzz && for t in rating messages close contact link_token mask_contacts; do \
	  CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done


# The digest charts' embedded font: a subset of Noto Sans CJK SC (SIL OFL 1.1) with every character
# the charts draw. Run after a chart string or an issue-type label changes (a test says when).
chart-font: $(STAMP)
	@test -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc || { echo "needs Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk)"; exit 1; }
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check fonttools
	$(VENV)/bin/python infra/fonts/subset-chart-font.py
