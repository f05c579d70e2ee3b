"""Terminal UI (Textual) over stored studies. Never imports torch to open."""
