# shopfloor: `make demo` runs the live demo, `make test` the whole suite on real servers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests need (binary:package): real servers, the browser, the compose checker,
# libfaketime (the demo-day test runs the demo at an off-shift hour), poppler's pdftotext (the
# PDF report's text, read back in every language) and socat (a virtual serial pair for Modbus RTU).
SERVER_BINARIES := mosquitto:mosquitto mosquitto_sub:mosquitto-clients influxd:influxdb victoria-metrics:victoria-metrics \
	chromium:chromium docker-compose:docker-compose faketime:faketime pdftotext:poppler-utils \
	socat:socat

.PHONY: demo test lint typecheck bench servers clean translations

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/shopfloor demo

# Three workers on two cores, a test file each: most tests wait on servers, browsers and
# timeouts, not on the CPU (12 min against 15 with two), and a file's module fixtures (servers,
# backfilled stores) are made once.
test: $(VENV)/.installed-test servers lint typecheck
	$(BIN)/python -m pytest --numprocesses 3 --dist loadfile --durations=20

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# The benchmarks, whose output replaces the README's performance block, then the outage tests
# as the soak they are: 60 s down instead of the suite's 20.
bench: $(VENV)/.installed-test servers
	$(BIN)/python -m bench --readme README.md
	SHOPFLOOR_TEST_OUTAGE_S=60 $(BIN)/python -m pytest --numprocesses 0 -q \
	  "tests/test_gateway_delivery.py::test_influxdb_down_under_load_loses_nothing" \
	  "tests/test_store_and_forward.py::test_broker_down_at_100_readings_a_second_loses_nothing"

# Translations: extract the marked texts into the template, merge it into every language's .po
# (new texts come in empty, gone ones are dropped), regenerate Serbian Latin from Cyrillic, and
# compile each catalogue to check it (the .mo goes to a scratch folder: the dashboard and the
# reports read the .po at run time). `make translations NEW_LANG=xx` starts a new language xx.
LOCALES := shopfloor/locales
POT := $(LOCALES)/shopfloor.pot
translations: $(VENV)/.installed-test
	$(BIN)/pybabel extract --mapping-file babel.cfg --output-file $(POT) --no-location \
	  --sort-by-file --keywords N_ --project shopfloor --width 100 dashboard readiness analytics
	$(if $(NEW_LANG),test -f $(LOCALES)/$(NEW_LANG)/LC_MESSAGES/shopfloor.po || \
	  $(BIN)/pybabel init --input-file $(POT) --output-dir $(LOCALES) --domain shopfloor \
	  --locale $(NEW_LANG) --width 100,)
	$(BIN)/pybabel update --input-file $(POT) --output-dir $(LOCALES) --domain shopfloor \
	  --no-fuzzy-matching --ignore-obsolete --width 100
	$(BIN)/python -m shopfloor.i18n
	for po in $(LOCALES)/*/LC_MESSAGES/shopfloor.po; do \
	  $(BIN)/pybabel compile --statistics --input-file $$po --output-file $$(mktemp) || exit 1; \
	done

# Installs the servers from Debian's packages when missing (as root), or says what to install.
servers:
	@missing=""; \
	for pair in $(SERVER_BINARIES); do \
	  bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$bin >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing:$$missing"; \
	    echo "install them with: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .shopfloor test-artifacts .pytest_cache .mypy_cache .ruff_cache
