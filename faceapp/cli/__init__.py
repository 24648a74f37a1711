"""The command-line edge: parses arguments, calls the core, maps outcomes to exit codes."""
