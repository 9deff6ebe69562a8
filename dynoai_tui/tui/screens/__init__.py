"""Dashboard screens (one class per terminal size mode) and modal dialogs."""
