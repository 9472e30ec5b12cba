"""Tests of the publishing package: batches, outputs, journal, failures, clean output."""
