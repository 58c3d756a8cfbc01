"""The reference for start-up: a bare Textual app that shows one label (``python -m bench._bare_app``)."""

from textual.app import App, ComposeResult
from textual.widgets import Label


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Label("bare-textual-ready")


if __name__ == "__main__":
    Bare().run()
