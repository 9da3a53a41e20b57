"""`python -m producer` runs the `sluice` command line."""

from producer.cli.app import main

main()
