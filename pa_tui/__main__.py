"""``python -m pa_tui``: the same as the ``pa-tui`` command."""

from pa_tui.cli import main

if __name__ == "__main__":
    main()
