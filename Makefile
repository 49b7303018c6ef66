.PHONY: demo test bench serve

# Install OpenAML in .venv and run the MNIST workflow end to end on the embedded service.
demo:
	scripts/demo.sh

# Install everything the tests need (Python packages, PostgreSQL, Chromium) and run them all.
test:
	scripts/test.sh

bench:
	scripts/bench.sh

# Serve the API and the console at http://127.0.0.1:8080 (.venv/bin/openaml serve); data in
# ./openaml-data, or in DATA_DIR: `make serve DATA_DIR=openaml-demo` shows the demo's data.
serve:
	@test -x .venv/bin/openaml || { echo "OpenAML is not installed in .venv yet: run make demo first"; exit 1; }
	.venv/bin/openaml serve $(if $(DATA_DIR),--data-dir $(DATA_DIR))
