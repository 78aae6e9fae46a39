"""Screens: the main console, help and the live preflight."""
