"""Harness that trains many activation/config combinations and measures steps to a target error."""
