"""The ``dynoai`` command: the CLI, its subcommands (commands/) and the Textual dashboard (tui/)."""
