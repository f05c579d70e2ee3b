"""What a screen showing a trial can do with it: copy both configs as YAML, ask for an export."""

from __future__ import annotations

from ... import storage as st
from ..messages import ExportRequested


class TrialActions:
    """A mixin for screens: ``trial()`` names the trial the keys act on."""

    def trial(self) -> st.TrialRecord | None:
        raise NotImplementedError

    def action_copy_yaml(self) -> None:
        from ..trial_text import config_yaml  # brings yaml: loaded on the first copy, not at start-up

        rec = self.trial()
        if rec and rec.config:
            self.app.copy_to_clipboard(config_yaml(rec))
            self.notify(f"configs of #{rec.number} copied as YAML: measured and trained, each marked")

    def action_export(self) -> None:
        rec = self.trial()
        if rec:
            self.notify(f"exporting #{rec.number} to ./export/ ...")
            self.post_message(ExportRequested(rec.number))
