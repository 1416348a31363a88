# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
DEMO_CAPTURE ?= captures/ice-turn-relay.pcapng

.PHONY: demo test install install-test bench

install:
	$(PYTHON) -m pip install -q -e .

install-test:
	bash scripts/install-system-deps.sh
	$(PYTHON) -m pip install -q -e '.[test]'

demo: install
	stunscope analyze $(DEMO_CAPTURE)

test: install-test
	$(PYTHON) -m pytest -n 2 --dist loadgroup

bench: install-test
	$(PYTHON) bench/run.py
