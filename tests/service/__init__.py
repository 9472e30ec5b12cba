"""Tests of the upload pre-check web service, over real HTTP."""
