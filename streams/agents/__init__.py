"""Agents: a few lines of wiring each around a stage object that does the work."""
