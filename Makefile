# The project's interface: build the Go test tooling, run a local control plane, test, run.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS_CACHE ?= $(or $(ATLANTIPLEX_TOOLS_CACHE),$(HOME)/.cache/atlantiplex-tools)
export ATLANTIPLEX_TOOLS_BIN := $(TOOLS_CACHE)/bin
export ATLANTIPLEX_TOOLS_CACHE := $(TOOLS_CACHE)
KUBECTL := $(ATLANTIPLEX_TOOLS_BIN)/kubectl
CLUSTER_DIR := target/cluster
export KUBECONFIG_DEV := $(CURDIR)/$(CLUSTER_DIR)/kubeconfig
DEVCLUSTER := cargo run -q -p devcluster --

.PHONY: help tools cluster-up cluster-down test lint crds run chart-lint docs

help:
	@echo "make run          control plane + CRDs + plans + examples + the operator (the main command)"
	@echo "make test         the whole suite: unit and end-to-end against a real control plane"
	@echo "make cluster-up   start the local control plane in the background (idempotent)"
	@echo "make cluster-down stop it and remove its state"
	@echo "make tools        build etcd, kube-apiserver, kube-controller-manager, kubectl, helm, stripe-mock"
	@echo "make lint         rustfmt and clippy, as CI runs them"
	@echo "make crds         regenerate crds/*.yaml (and the chart's copy) from the Rust types"
	@echo "make chart-lint   helm lint and helm template of charts/atlantiplex-operator"
	@echo "make docs         build docs/ as a site into target/book (mdBook) and check every link"
	@echo "make bench N=100  provisioning benchmark (default N=1000): operator vs a direct SSA client"
	@echo "make bench-admission  webhook decision time in process and HTTPS round trips at 500 req/s"
	@echo "make bench-ledger audit records/s on SQLite and on a PostgreSQL it starts (bench-results/ledger.json)"
	@echo "make bench-usage  POST /v1/usage events/s and ack latency on SQLite and PostgreSQL, event → status lag, the hourly Stripe push"
	@echo "make bench-console every console page's time (p50/p99, cold) with 1,000 organizations and a year of history (bench-results/console.json)"

# build-tools.sh reports its progress on stderr (shown); stdout is only the bin directory.
tools:
	@hack/build-tools.sh >/dev/null

# With Ory Hydra as its OpenID Connect provider: kube-apiserver trusts it through the operator's
# `authentication-config`, and a development login page (hack/dev-users.yaml) signs people in.
cluster-up: tools
	@cargo build -q --bin atlantiplex-operator
	@$(DEVCLUSTER) --dir $(CLUSTER_DIR) up --identity-config-command "target/debug/atlantiplex-operator authentication-config" \
		--console-redirect https://127.0.0.1:$(API_PORT)/auth/callback

cluster-down:
	@$(DEVCLUSTER) --dir $(CLUSTER_DIR) down

test: tools
	cargo test --workspace --all-targets

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# The chart ships identical copies (Helm installs crds/ before its templates); the unit tests fail on drift.
crds:
	cargo run -q --bin atlantiplex-operator -- crds --out crds
	rm -f $(CHART)/crds/*.yaml && cp crds/*.yaml $(CHART)/crds/

# The manual (docs/, src = "docs" in book.toml) as a site. mdBook is installed once into the tools
# cache, keyed by version, outside the repository; only the search feature (serve/watch are for
# authoring: `cargo install mdbook` yourself for `mdbook serve`). mdBook reports broken SUMMARY
# entries and includes; tests/docs_links.rs checks every relative link and #anchor of README.md and
# docs/, and that every page is in SUMMARY.md.
MDBOOK_VERSION := 0.5.4
MDBOOK_ROOT := $(TOOLS_CACHE)/mdbook-$(MDBOOK_VERSION)
MDBOOK := $(MDBOOK_ROOT)/bin/mdbook

$(MDBOOK):
	@echo "docs: installing mdbook $(MDBOOK_VERSION) into $(MDBOOK_ROOT) (first time only, a few minutes)" >&2
	cargo install mdbook --locked --version $(MDBOOK_VERSION) --no-default-features --features search \
		--root $(MDBOOK_ROOT) --target-dir $(MDBOOK_ROOT)/build
	rm -rf $(MDBOOK_ROOT)/build

docs: $(MDBOOK)
	$(MDBOOK) build
	cargo test -q --test docs_links
	@echo "docs: target/book/index.html"

CHART := charts/atlantiplex-operator
HELM := $(ATLANTIPLEX_TOOLS_BIN)/helm
# helm built from Go modules reports Kubernetes v1.20 to `helm template` unless told otherwise.
KUBE_VERSION ?= 1.36.3

chart-lint: tools
	$(HELM) lint $(CHART)
	$(HELM) lint $(CHART) -f $(CHART)/ci/cert-manager-values.yaml
	$(HELM) template atlantiplex $(CHART) -n atlantiplex-system --kube-version $(KUBE_VERSION) >/dev/null
	$(HELM) template atlantiplex $(CHART) -n atlantiplex-system --kube-version $(KUBE_VERSION) -f $(CHART)/ci/cert-manager-values.yaml >/dev/null
	@echo "chart OK (the server-side dry-run is in tests/helm_chart.rs)"

run: cluster-up
	KUBECONFIG=$(KUBECONFIG_DEV) $(KUBECTL) apply --server-side -f crds/
	KUBECONFIG=$(KUBECONFIG_DEV) $(KUBECTL) wait --for=condition=Established crd --all --timeout=60s
	KUBECONFIG=$(KUBECONFIG_DEV) $(KUBECTL) apply --server-side -f examples/plans.yaml
	@# The chart's reader roles (metrics, usage reporting), so the documented RoleBindings work here too.
	$(HELM) template atlantiplex $(CHART) --kube-version $(KUBE_VERSION) --show-only templates/metrics-rbac.yaml \
		| KUBECONFIG=$(KUBECONFIG_DEV) $(KUBECTL) apply --server-side -f -
	cargo build --bin atlantiplex-operator
	@# The operator runs under its own identity (its writes skip its own webhook by user name; the
	@# admin kubeconfig's must not), and starts before the examples: its webhook admits them.
	@# The key API keys are hashed with, shared by the operator (declared ApiKeys) and the tenant API.
	@test -s $(CLUSTER_DIR)/api-key-hash || head -c 48 /dev/urandom | base64 > $(CLUSTER_DIR)/api-key-hash
	@OPERATOR_KUBECONFIG=$$($(DEVCLUSTER) --dir $(CLUSTER_DIR) kubeconfig --user atlantiplex-operator --group system:masters); \
	KUBECONFIG=$$OPERATOR_KUBECONFIG target/debug/atlantiplex-operator run \
		--webhook-bind 127.0.0.1:$(WEBHOOK_PORT) --webhook-url https://127.0.0.1:$(WEBHOOK_PORT) \
		--webhook-client-ca $(CLUSTER_DIR)/pki/admission-client-ca.crt \
		--api-key-hash-key-file $(CLUSTER_DIR)/api-key-hash --platform-admin-group system:masters,oidc:platform-admins \
		--metrics-bind 127.0.0.1:$(METRICS_PORT) --usage-bind 127.0.0.1:$(USAGE_PORT) & operator=$$!; \
	trap 'kill $$operator $$api 2>/dev/null; wait $$operator $$api' INT TERM; \
	until (exec 3<>/dev/tcp/127.0.0.1/$(METRICS_PORT) && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && grep -q ' 200 ' <&3) 2>/dev/null; do \
		kill -0 $$operator 2>/dev/null || exit 1; sleep 1; done; \
	KUBECONFIG=$(KUBECONFIG_DEV) $(KUBECTL) apply --server-side -f examples/; \
	set -a; . $(CLUSTER_DIR)/identity.env; set +a; \
	KUBECONFIG=$$OPERATOR_KUBECONFIG target/debug/atlantiplex-operator api --bind 127.0.0.1:$(API_PORT) \
		--api-key-hash-key-file $(CLUSTER_DIR)/api-key-hash --public-url https://127.0.0.1:$(API_PORT) \
		--platform-admin-group oidc:platform-admins & api=$$!; \
	echo "console:    https://127.0.0.1:$(API_PORT)/console (self-signed certificate; docs/console.md)"; \
	echo "tenant API: https://127.0.0.1:$(API_PORT)/v1/openapi.json (docs/tenant-api.md)"; \
	echo "sign in (docs/sso.md): people and passwords in hack/dev-users.yaml, e.g. alice@acme.example / alice"; \
	echo "  web:     https://127.0.0.1:$(API_PORT)/auth/login"; \
	echo "  kubectl: KUBECONFIG=$(CLUSTER_DIR)/sso.kubeconfig $(KUBECTL) get configmaps -n org-acme   (runs atlantiplex-operator login)"; \
	wait $$operator $$api

# The local API server calls the webhook on loopback (the development override of its address).
WEBHOOK_PORT ?= 8443
METRICS_PORT ?= 8080
USAGE_PORT ?= 8444
# The tenant API (atlantiplex-operator api).
API_PORT ?= 8445

N ?= 1000
.PHONY: bench bench-admission
bench-admission: tools
	cargo build --release --bin atlantiplex-operator -p atlantiplex-operator
	cargo run --release -p bench --bin admission-bench -- --orgs $(N) --out bench-results/admission.json

bench: tools
	cargo build --release --bin atlantiplex-operator -p atlantiplex-operator
	cargo run --release -p bench --bin atlantiplex-bench -- --orgs $(N)

.PHONY: bench-ledger
bench-ledger:
	cargo run --release -p bench --bin ledger-bench -- --out bench-results/ledger.json

.PHONY: bench-usage
bench-usage: tools
	cargo build --release --bin atlantiplex-operator -p atlantiplex-operator
	cargo run --release -p bench --bin usage-bench -- --out bench-results/usage.json

# The tenant API's OpenAPI document from the handlers' types; a unit test fails on drift.
.PHONY: openapi
openapi:
	cargo run -q --bin atlantiplex-operator -- openapi --out openapi/v1.json

# The tenant API under open-loop load (2 replicas on PostgreSQL, 1 on SQLite), key revocation across replicas,
# the in-process key check and the PostgreSQL rate-limit statement (bench-results/api.json).
.PHONY: bench-api
bench-api: tools
	cargo build --release --bin atlantiplex-operator -p atlantiplex-operator
	cargo run --release -p bench --bin api-bench -- --out bench-results/api.json

# Every console page (signed in as a platform admin who owns every organization) with 1,000 organizations,
# a year of subscription history and 90 days of usage: cold and p50/p90/p99 (bench-results/console.json).
.PHONY: bench-console
bench-console: tools
	cargo build --release --bin atlantiplex-operator -p atlantiplex-operator
	cargo run --release -p bench --bin console -- --out bench-results/console.json
