"""The fault suite: real processes, real signals, a real server."""
