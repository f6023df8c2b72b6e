# muckwatch — the two commands a new user needs:
#   make demo   everything on this machine: embedded Kafka-protocol broker, local ClickHouse,
#               a simulated city and the pipeline, with live counts (Ctrl-C stops it all)
#   make test   every test, integration tests against a real ClickHouse server and the broker
GO ?= go

.PHONY: demo test deps build console console-perf fuzz vet chaos lint-openapi rules chart

demo: deps build
	bin/muckwatch demo

test: deps vet lint-openapi console rules
	@git diff --quiet -- console/dist 2>/dev/null || { echo "console/dist differs from a build of console/web: commit the rebuilt bundle (make console)"; exit 1; }
	cd console && node --test web/*.test.mjs
	$(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -count=1 -run '^TestColumnFeedAllocatesNothing$$' ./sink # allocations, which the race detector's build changes
	$(MAKE) fuzz

# The OpenAPI document through a third-party linter (Redocly's recommended rules, warnings as
# errors; installed by `make deps`).
lint-openapi:
	tools/openapi-lint/node_modules/.bin/redocly lint --config tools/openapi-lint/redocly.yaml --format=stylish api/openapi.json

# The fault tests at full length: ClickHouse down for 60 s under load, kill -9 of the pipeline at
# six points, three instances with one killed, a 550 MB flood of huge records, several times over
# (the fast versions run in `make test`).
CHAOS_ROUNDS ?= 3
chaos: deps
	MUCKWATCH_OUTAGE=60s MUCKWATCH_FLOOD_RECORDS=600 $(GO) test -race -count=$(CHAOS_ROUNDS) -timeout 60m -v \
	  -run 'TestClickHouseOutage|TestCrashRecovery|TestScaleOut|TestHostileFlood|TestRestartContinuesEpisodes' ./pipeline

# Every decoder's fuzz test (the input records, the detector checkpoints read back from the
# state topic, and the live records of a shared API view), for a bounded number of inputs each (about 10 s here), seeded from its testdata
# corpus. A count, not a duration: with a duration Go's fuzzing coordinator (go1.26) can report
# its own deadline as a failure, "context deadline exceeded" with no failing input
# (golang/go#75804).
FUZZEXECS ?= 100000
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFix$$' -fuzztime $(FUZZEXECS)x ./record
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEvent$$' -fuzztime $(FUZZEXECS)x ./record
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeOfficer$$' -fuzztime $(FUZZEXECS)x ./record
	$(GO) test -run '^$$' -fuzz '^FuzzNumberFastPaths$$' -fuzztime $(FUZZEXECS)x ./record
	$(GO) test -run '^$$' -fuzz '^FuzzRestore$$' -fuzztime $(FUZZEXECS)x ./detectors
	$(GO) test -run '^$$' -fuzz '^FuzzParseCursor$$' -fuzztime $(FUZZEXECS)x ./api
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeLiveRecord$$' -fuzztime $(FUZZEXECS)x ./api
	$(GO) test -run '^$$' -fuzz '^FuzzFeedItemJSON$$' -fuzztime $(FUZZEXECS)x ./api
	$(GO) test -run '^$$' -fuzz '^FuzzParseClock$$' -fuzztime $(FUZZEXECS)x ./api

# The Prometheus alert rules (deploy/prometheus): valid, and each firing on the series it is meant
# for and only after its hold duration (promtool's unit tests, about a second).
rules:
	promtool check rules deploy/prometheus/muckwatch-rules.yml
	promtool test rules deploy/prometheus/muckwatch-rules.test.yml

# The Helm chart linted and rendered by a helm built from the Go module proxy into bin/, the
# renders written to deploy/helm/rendered.yaml (committed) with the hash of the chart they come
# from. Not part of `make test`: building helm takes 14 min on a machine with empty Go caches (30 s
# with warm ones); `make test` instead checks that rendered.yaml is the render of the chart as it
# is and decodes it strictly into the Kubernetes API types (go test ./deploy). Run it after
# changing the chart, and commit rendered.yaml.
HELM_VERSION ?= v3.19.5
HELM ?= bin/helm-$(HELM_VERSION)/helm
CHART_SETS := "" "--set replicaCount=3 --set city.configMap=muckwatch-city"
chart: $(HELM)
	$(HELM) lint --strict deploy/helm/muckwatch
	{ echo "# make chart: helm $(HELM_VERSION) template of deploy/helm/muckwatch sha256 $$(cd deploy/helm && find muckwatch -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"; \
	  for set in $(CHART_SETS); do printf -- "---\n# values: %s\n" "$${set:-defaults}"; $(HELM) template muckwatch deploy/helm/muckwatch $$set || exit 1; done; \
	} > deploy/helm/rendered.yaml.tmp && mv deploy/helm/rendered.yaml.tmp deploy/helm/rendered.yaml

bin/helm-$(HELM_VERSION)/helm:
	GOBIN=$(CURDIR)/bin/helm-$(HELM_VERSION) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# Installs what the tests and the demo need: Debian's clickhouse-server and zookeeper (for the
# ClickHouse cluster test) when missing, the Go modules, the OpenAPI linter (npm, pinned), the
# console's npm packages and Debian's chromium for its browser journeys, Debian's prometheus
# package (promtool for the alert rules, the server for the test that scrapes a running pipeline).
# Idempotent.
deps:
	bash deploy/clickhouse-local.sh install
	bash deploy/zookeeper-local.sh install
	bash deploy/promtool.sh
	$(GO) mod download
	bash tools/openapi-lint/install.sh
	bash console/build.sh deps

# The browser console's bundle (console/dist, embedded in the binary; committed so that a plain
# `go build` works without Node), rebuilt from console/web.
console:
	bash console/build.sh build

# The command centre measured in Chromium with 15,000 live trucks reporting every 10 s: open time,
# frame times, JavaScript heap (docs/console.md).
console-perf: deps console
	$(GO) build -o bin/perfserve ./console/perfserve
	bash console/perf.sh bin/perfserve

build: console
	$(GO) build -o bin/muckwatch ./cmd/muckwatch
	$(GO) build -o bin/muckbench ./cmd/muckbench
