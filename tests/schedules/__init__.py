"""Schedules: ticks, firing once across workers, definitions, listing."""
