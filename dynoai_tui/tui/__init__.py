"""The Textual dashboard: app, screens, widgets, styles. Only the TUI commands import this package."""
