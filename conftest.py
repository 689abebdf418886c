"""Loads the howto-conformance pytest plugin for testsuites/ and tests/."""

pytest_plugins = ["framework.plugin"]
