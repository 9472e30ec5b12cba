"""Tests of the consent package: the data directory, register, audit, changes, medical data."""
