"""The three stages of the worker-wide pipeline (fetch → transform → store) and their wiring."""
