"""Helpers the tests import (builders of files and registers, paths, outside tools); fixtures
live in the conftest files instead."""
