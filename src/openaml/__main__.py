"""`python -m openaml` is the `openaml` command."""

from openaml.cli.main import main

main()
