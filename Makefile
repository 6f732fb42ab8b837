# Grove — build, test and run. Every target installs what it needs first.
SWIFT ?= swift
APT_PACKAGES := libopenblas-dev libsqlite3-dev libopenmpi-dev openmpi-bin pkg-config python3 sqlite3
GROVE := .build/release/grove

.PHONY: setup build test quickstart doctor bench bench-compare report-screenshot clean

# Debian packages Grove links or loads at run time (Open MPI only under `mpirun -np N grove run`; its tests
# need mpirun), and the sqlite3 shell for the README's queries of run.sqlite; installed only when missing.
setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: setup
	$(SWIFT) build -c release --product grove

# The suite is XCTest only (Swift Testing disabled, so the runner's last line is XCTest's count).
# The tokenizer tests cross-check against Hugging Face `tokenizers`, the GGUF export against llama.cpp's
# `gguf` package, when importable; the report test renders report.html in headless Chromium when it is installed.
test: setup
	@python3 -c "import tokenizers" 2>/dev/null || python3 -m pip install --quiet tokenizers || echo "tokenizers not installed: the Python cross-check will be skipped"
	@python3 -c "import gguf" 2>/dev/null || python3 -m pip install --quiet gguf || echo "gguf not installed: the GGUF export check against llama.cpp's package will be skipped"
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: the report's browser check will be skipped"
	$(SWIFT) test --disable-swift-testing

doctor: build
	$(GROVE) doctor

# The main job. It starts over each time: runs/quickstart/ is replaced.
quickstart: build
	$(GROVE) doctor
	rm -rf runs/quickstart
	$(GROVE) run Recipes/quickstart.yaml

# Grove's throughput, one JSON line per measurement (see README, Performance).
bench: build
	$(GROVE) bench --isolate

# Grove and the PyTorch/TRL reference (../shared/reference, set up on first use) measured in
# pairs, and the table of ratios. REFERENCE_PYTHON=/path/to/python skips the reference's setup;
# ARGS="--rounds N" sets the rounds (default 2).
bench-compare: build
	python3 Tests/Benchmarks/bench_compare.py $(ARGS)

# A report as a browser draws it, for a look without a desktop:
# make report-screenshot REPORT=runs/quickstart/report.html  (writes runs/quickstart/report.png; PNG=FILE to choose)
REPORT ?= runs/quickstart/report.html
PNG ?= $(basename $(REPORT)).png
report-screenshot:
	@command -v chromium >/dev/null || { echo "installing chromium"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	chromium --headless --no-sandbox --disable-gpu --screenshot=$(abspath $(PNG)) --window-size=1200,3000 file://$(abspath $(REPORT)) 2>/dev/null

clean:
	rm -rf .build
