# Every target depends on install, so a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench golden preview clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@# the distribution was called `newsletter` before it became `newsletter-as-code`
	$(BIN)/python -m pip uninstall --quiet --disable-pip-version-check --yes newsletter
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Builds both samples, imports the sample audience and sends the latest issue to the
# outbox. The demo secret only signs unsubscribe links of outbox files; real sends take
# NEWSLETTER_SECRET from the operator's environment.
demo: install
	@for d in issues/*/; do $(BIN)/newsletter build "$$d" || exit 1; done
	$(BIN)/newsletter audience import subscribers.example.csv
	NEWSLETTER_SECRET=$${NEWSLETTER_SECRET:-demo-secret-not-for-production} \
	  $(BIN)/newsletter send "$$(ls -d issues/*/ | tail -n 1)" --yes --provider outbox

test: install
	@bash tests/system-packages
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check pipeline tests
	$(BIN)/lint-imports --no-cache

bench: install
	$(BIN)/python tests/bench/run.py

golden: install
	$(BIN)/python -m tests.golden

preview: install
	$(BIN)/newsletter preview "$$(ls -d issues/*/ | tail -n 1)"

clean:
	rm -rf build outbox site .newsletter
