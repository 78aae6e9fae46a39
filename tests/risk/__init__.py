"""Unit tests of the pure risk engine."""
