"""Subcommands of the `jobqueue` CLI, one module each (see jobqueue.cli)."""
