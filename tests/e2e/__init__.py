"""End-to-end tests, kept apart because they cross every job: the real CLI as a subprocess,
the bundled sample photos and the shared real photos through init, import, enrol and publish."""
