.PHONY: demo test bench serve

# Install OpenAML in .venv and run the MNIST workflow end to end on the embedded service.
demo:
	scripts/demo.sh

# Install everything the tests need (Python packages, PostgreSQL, Chromium) and run them all.
test:
	scripts/test.sh

bench:
	scripts/bench.sh

serve:
	.venv/bin/openaml serve
