"""Tests of publishing.captions: rewriting, one photo's caption, captions through publish."""
