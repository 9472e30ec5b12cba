"""CLI-level tests: the commands in process through CliRunner, checked through the library."""
