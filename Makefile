# shipshape: `make test` checks everything, `make demo` runs the bundle against a local AWS emulator.
# Both install what they need into a project-local virtualenv (.venv) on first use.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CARGO ?= cargo

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): tests/emulator/requirements.txt
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV) || { echo "cannot create $(VENV): install Python 3.10+ with the venv module" >&2; exit 1; }
	$(VPY) -m pip install --quiet --disable-pip-version-check -r tests/emulator/requirements.txt
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create the emulator's virtualenv (moto, pytest, cfn-lint)

.PHONY: fmt-check
fmt-check:
	$(CARGO) fmt --all --check

.PHONY: lint
lint: $(STAMP) ## Clippy with -D warnings, cfn-lint on the template, its generated hook slots current
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(PYTHON) release/hook_slots.py --check

.PHONY: test-emulator
test-emulator: $(STAMP) ## The emulator extensions' own tests
	cd tests/emulator && ../../$(VPY) -m pytest -q tests

.PHONY: unit
unit: ## The fast inner loop: unit tests only, no emulator, no virtualenv
	$(CARGO) test --workspace --locked --lib

.PHONY: test-rust
test-rust: $(STAMP) ## Unit and integration tests (the integration tests start emulators)
	SHIPSHAPE_REQUIRE_EMULATOR=1 $(CARGO) test --workspace --locked

TEMPLATE_VENV := .venv-template
TEMPLATE_STAMP := $(TEMPLATE_VENV)/.installed

$(TEMPLATE_STAMP): tests/template/requirements.txt
	@test -x $(TEMPLATE_VENV)/bin/python || $(PYTHON) -m venv $(TEMPLATE_VENV)
	$(TEMPLATE_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/template/requirements.txt
	@touch $@

# SHIPSHAPE_TEMPLATE: the template to check (default template.yaml; check-package gives the bundle's).
.PHONY: test-template
test-template: $(TEMPLATE_STAMP) ## The template rendered offline: IAM per function at 50 clusters/groups/functions, checkov, parliament, upgrades, release metadata
	$(TEMPLATE_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/template

.PHONY: test
test: fmt-check lint test-rust test-emulator test-template ## Everything CI runs: format, lints, all tests, template checks

SEEDS ?= 200
.PHONY: chaos
chaos: $(STAMP) ## A day in the fleet over SEEDS seeds (a count, or seeds to replay: SEEDS=17,): invariants checked; bench/results/chaos.md
	SHIPSHAPE_REQUIRE_EMULATOR=1 SHIPSHAPE_CHAOS_SEEDS=$(SEEDS) SHIPSHAPE_CHAOS_REPORT=$(CURDIR)/bench/results/chaos.md \
		$(CARGO) test --locked -p integration-tests --test integration -- chaos --nocapture

.PHONY: demo
demo: $(STAMP) ## Run the functions' binaries as Lambda does, against the local emulator
	$(CARGO) build --locked --bins
	cd tests/emulator && ../../$(VPY) demo.py ../../target/debug

DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
SAM := PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(DEPLOY_VENV)/bin/sam

$(DEPLOY_STAMP): deploy-requirements.txt
	@test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r deploy-requirements.txt
	@touch $@

.PHONY: build
build: $(DEPLOY_STAMP) $(STAMP) ## sam validate --lint, then sam build: every function for arm64 (cargo-lambda + zig, no Docker)
	rustup target add aarch64-unknown-linux-gnu
	$(SAM) validate --lint --region us-east-1
	$(SAM) build
	$(VPY) bench/package_sizes.py .aws-sam/build bench/results/package-sizes.md

# The version of the release: [workspace.package] version in Cargo.toml, its one home.
VERSION := $(shell sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
BUNDLE := dist/shipshape-$(VERSION)

.PHONY: package
package: build ## make build, then dist/shipshape-<version>/: prebuilt arm64 zips and a template that deploys them with the SAM CLI alone (checked)
	$(PYTHON) release/package.py .aws-sam/build dist
	$(MAKE) --no-print-directory check-package

.PHONY: check-package
check-package: $(DEPLOY_STAMP) $(TEMPLATE_STAMP) ## The bundle's template: sam validate --lint, cfn-lint, and the template checks on it
	@test -f $(BUNDLE)/template.yaml || { echo "no $(BUNDLE): run make package" >&2; exit 1; }
	$(SAM) validate --lint --region us-east-1 --template-file $(BUNDLE)/template.yaml
	$(TEMPLATE_VENV)/bin/cfn-lint $(BUNDLE)/template.yaml
	SHIPSHAPE_TEMPLATE=$(BUNDLE)/template.yaml $(TEMPLATE_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/template

.PHONY: bench
bench: $(STAMP) ## Benchmarks: the alias-shifter's judge on synthetic traffic; release binaries against the emulator and Python peers (results in bench/results/)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(CARGO) build --locked --release --bins
	$(CARGO) run --locked --release -p alias-shifter --example judge_benchmark -- bench/results/alias-shifter-judge.md
	$(VPY) bench/scale_in_cleaner.py target/release/scale-in-cleaner 5000 bench/results/scale-in-cleaner.md
	$(VPY) bench/compare.py target/release bench/results/comparison.md $(wildcard .aws-sam/build)
	$(MAKE) $(HELD_BIN)
	$(VPY) bench/drain_scale.py target/release $(HELD_BIN) bench/results/drain-scale.md

# The lifecycle-drainer before the reconcile (one held invocation per drain), built from the last commit
# before it, for bench/drain_scale.py to compare with.
HELD_REV := ca003c2
HELD_BIN := target/bench-held/release/lifecycle-drainer
$(HELD_BIN):
	rm -rf target/bench-held/src && mkdir -p target/bench-held/src
	git archive $(HELD_REV) | tar -x -C target/bench-held/src
	cd target/bench-held/src && CARGO_TARGET_DIR=$(CURDIR)/target/bench-held $(CARGO) build --locked --release -p lifecycle-drainer

.PHONY: clean
clean: ## Remove build output and the virtualenv
	$(CARGO) clean
	rm -rf $(VENV) $(DEPLOY_VENV) $(TEMPLATE_VENV) .aws-sam dist
