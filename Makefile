# clickpulse: `make demo` runs the whole pipeline, `make test` runs every test. Both set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
CACHE       := .cache
DATA        := .data
KAFKA_LIBS  := $(CACHE)/kafka-4.1.1/libs
SPARK_JARS  := $(CACHE)/spark-jars
FERRETDB    := $(CACHE)/bin/clickpulse-ferretdb
COMPOSE_CHECK := $(CACHE)/bin/clickpulse-compose-check
# The Kafka connector and what it needs, from stack/spark/pom.xml (a list with commas: $(call) would split it)
SPARK_KAFKA_JARS := spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2
MVN         := mvn -B -q -Dmaven.repo.local=$(abspath $(CACHE))/m2
GOENV       := GOMODCACHE=$(abspath $(CACHE))/go-mod GOPATH=$(abspath $(CACHE))/go GOCACHE=$(abspath $(CACHE))/go-build GOFLAGS=-modcacherw
export KAFKA_PORT ?= 9092
export MONGO_PORT ?= 27017
export CLICKPULSE_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(KAFKA_PORT)
export CLICKPULSE_MONGO_URI ?= mongodb://127.0.0.1:$(MONGO_PORT)/
export CLICKPULSE_CHECKPOINT_DIR ?= $(abspath $(DATA))/checkpoints
# A local Spark binds its UI to SPARK_LOCAL_IP, else to every interface (README: Security).
export SPARK_LOCAL_IP ?= 127.0.0.1
PYTEST_ARGS ?=
# Extra flags for `make job`, e.g. JOB_ARGS="--metrics prometheus --conf spark.sql.shuffle.partitions=4"
JOB_ARGS ?=
# Run a download up to three times: the package index sometimes cuts a large file short (pyspark's is 450 MB),
# and pip's own resumes then ask the same server for the same missing bytes.
retry = for try in 1 2 3; do $(1) && break; [ $$try -lt 3 ] || exit 1; \
  echo "make: that step failed (try $$try of 3); trying it again in 20 s" >&2; sleep 20; done

.PHONY: help setup venv jars ferretdb postgres compose-check browser stack-up stack-down stack-status test lint demo demo-down job producer report dist bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: venv jars ferretdb postgres ## install everything the pipeline needs (venv, jars, FerretDB, PostgreSQL)

postgres: ## Debian's PostgreSQL server, FerretDB's storage (skipped when mongod is installed)
	@command -v mongod >/dev/null || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

compose-check: $(COMPOSE_CHECK)
$(COMPOSE_CHECK): tests/docker/composecheck/main.go tests/docker/composecheck/go.mod tests/docker/composecheck/go.sum
	cd tests/docker/composecheck && $(call retry,$(GOENV) go build -o $(abspath $@) .)

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call retry,$(PY) -m pip install --cache-dir $(CACHE)/pip -q --upgrade pip)
	$(call retry,$(PY) -m pip install --cache-dir $(CACHE)/pip -q -r requirements-dev.txt)
	# clickpulse itself, editable, with its console scripts (its dependencies are the pins just installed)
	$(PY) -m pip install --cache-dir $(CACHE)/pip -q --no-deps --no-build-isolation -e .
	touch $@

jars: $(KAFKA_LIBS)/.installed $(SPARK_JARS)/.installed
$(KAFKA_LIBS)/.installed: stack/kafka/pom.xml
	$(call retry,$(MVN) -f stack/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(abspath $(KAFKA_LIBS)))
	touch $@
$(SPARK_JARS)/.installed: stack/spark/pom.xml
	$(call retry,$(MVN) -f stack/spark/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(abspath $(SPARK_JARS)) \
	  -DincludeArtifactIds=$(SPARK_KAFKA_JARS))
	touch $@

ferretdb: $(FERRETDB)
$(FERRETDB): stack/ferretdb/main.go stack/ferretdb/go.mod stack/ferretdb/go.sum
	@if command -v mongod >/dev/null; then echo "mongod found on PATH: FerretDB not needed"; mkdir -p $(dir $@); touch $@; \
	else cd stack/ferretdb && $(call retry,$(GOENV) go build -o $(abspath $@) .) ; fi

browser: ## install Debian's headless Chromium for the browser test
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

stack-up: setup ## start Kafka (KRaft) and the Mongo-wire server on 127.0.0.1
	$(PY) -m devstack up
stack-down: ## stop them
	@test -x $(PY) && $(PY) -m devstack down || true
stack-status: ## report them
	$(PY) -m devstack status

test: setup compose-check browser ## run every test (unit, integration, crash, cluster, browser); starts its own servers
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv ## ruff
	$(PY) -m ruff check .

job: setup ## run the streaming job against the local stack (foreground)
	$(VENV)/bin/clickpulse-job $(JOB_ARGS)

producer: setup ## run the producer against the local stack (foreground)
	$(VENV)/bin/clickpulse-producer

report: setup ## serve the Streamlit report on http://localhost:8501
	$(VENV)/bin/clickpulse-report --port 8501

demo: stack-up ## the whole pipeline: stack, producer, job and report at http://localhost:8501 (Ctrl-C stops)
	$(PY) -m devstack demo

demo-down: stack-down ## stop whatever `make demo` left running

dist: venv ## build dist/clickpulse.zip for spark-submit --py-files
	$(PY) scripts/make_dist.py --output dist/clickpulse.zip

BENCHMARKS = job producer report drain pipeline

bench: setup ## run the benchmarks (print JSON; long: see the README)
	@for b in $(BENCHMARKS); do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done

clean: stack-down ## remove runtime data (keeps downloads)
	rm -rf $(DATA) artifacts dist
