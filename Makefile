# Feedback Loop. Two commands on a fresh machine with Rust and Python 3:
#   make run    the whole system locally (moto started for you) on 127.0.0.1:3000
#   make test   every test: unit, property, moto-backed adapter/handler, end to end, template lint
#
# Build output and the Python venv live outside the clone so fresh clones (CI) reuse them.
CACHE            ?= $(HOME)/.cache/feedback-loop
VENV             ?= $(CACHE)/venv
export CARGO_TARGET_DIR ?= $(CACHE)/target
export FEEDBACK_VENV    := $(VENV)
export CARGO_TERM_COLOR ?= never
PY               := $(VENV)/bin/python
STAMP            := $(VENV)/.installed-$(shell cat infra/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: run test venv build lint-template lint bench sam-build clean-cache

run: $(STAMP)
	cargo build --workspace --bins
	$(CARGO_TARGET_DIR)/debug/feedback-local

test: $(STAMP) lint-template
	cargo build --workspace --bins
	cargo test --workspace --no-fail-fast

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

lint: lint-template
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# Release build of the functions, then size, cold start and peak RSS on a local Lambda Runtime API.
bench: $(STAMP)
	cargo build --release --workspace --bins
	$(CARGO_TARGET_DIR)/release/lambda-bench

# SAM build as AWS will run it (cargo-lambda + zig cross-compile to arm64). Slow: compiles per function.
sam-build: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r infra/requirements-deploy.txt
	PATH="$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} sam build

clean-cache:
	rm -rf $(CACHE)
