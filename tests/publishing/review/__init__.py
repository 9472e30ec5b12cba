"""Tests of publishing.review: the review batch, its contact sheet and its local server."""
