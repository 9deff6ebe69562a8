"""Pure logic and file formats: no textual, no pyserial, no python-can (see docs/ARCHITECTURE.md)."""
