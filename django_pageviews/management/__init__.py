"""The package's management commands (in ``commands/``)."""
