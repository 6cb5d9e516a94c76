# Two commands set up a fresh machine: `make demo` and `make test`.
# The install runs once; a second call finds the stamp and skips it.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.reelgraph-installed
# A CPU torch where no NVIDIA GPU answers (here pip takes 2.13.0 from the local disk).
TORCH   ?= $(shell nvidia-smi >/dev/null 2>&1 && echo "torch>=2.2" || echo "torch==2.13.0")
PROMPT  ?= a red ball rolls to the right
SEED    ?= 0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,ray,ui]"
	touch $(STAMP)

# The demo first renders a small toy pool (once; a rerun adds nothing): references for the offline
# rewriter and videos for ONA noise (POS), so it runs the whole planning path without an LLM.
demo: $(STAMP)
	$(PY) cli.py index toy --n 300 --json > /dev/null
	$(PY) cli.py generate "$(PROMPT)" --seed $(SEED) --out outputs/demo --overwrite

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf outputs .pytest_cache .ruff_cache
