"""Command-line programs: each parses flags, builds a config and calls one library function."""
