"""Captions: rewriting names for a purpose, and the caption of one photo."""
