"""Tests of the medical board: selection, PDF, HTML, status."""
