"""Faust wiring: the app, its topics, thin agents and web views."""
