"""Tests of the web dashboard and HTTP API (`sluice dashboard`)."""
