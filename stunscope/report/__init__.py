"""Headless outputs: text, JSON and JSON Lines renderers."""
