"""Job 2, the upload pre-check HTTP service: the app, upload handling, the guard, API tokens."""
