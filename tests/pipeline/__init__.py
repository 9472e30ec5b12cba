"""Tests of the pipeline package: boxes, loading, formats, detection, matching, redaction."""
