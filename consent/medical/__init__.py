"""Medical records and the board's photos and settings, under the separate medical key.

Kept inside `consent` because retention, erasure and subject-access export must always
reach them.
"""
