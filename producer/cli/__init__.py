"""The `sluice` command line (`producer.cli.app:main`); `render` holds its reusable views."""
