"""Hooks of the Hyperline provider."""
