"""pa-tui: a keyboard-first console for healthcare contact-center agents."""

__version__ = "0.1.0"
