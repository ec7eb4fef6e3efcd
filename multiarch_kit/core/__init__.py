"""The foundations every room stands on: the one error type, the settings, the one command runner,
files written whole, and the run log."""
