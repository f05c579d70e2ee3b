"""``evit-search tui``: browse a study's candidates and Pareto front, live, in the terminal.

A thin App: it reads the storage off the UI thread (the first read in a forked process where it
can, see :mod:`.first_read`; then a thread worker every few seconds), hands each new read to the
main screen, pushes screens and runs exports. Behaviour lives in the
screens and widgets that own it (``screens/``, ``widgets/``). torch is never imported to open it.
"""

from __future__ import annotations

from textual import on, work
from textual.app import App

from .. import storage as st
from ..errors import StorageError
from . import first_read
from . import view as D
from .messages import ExportRequested, StudyPicked
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .screens.picker import StudyPicker


class EvitTui(App):
    CSS_PATH = "app.tcss"
    TITLE = "evit-search"
    SCREENS = {"help": HelpScreen}
    ENABLE_COMMAND_PALETTE = False  # every key is in the footer or in help (?)

    def __init__(self, study: str | None, storage: str | None, refresh_s: float = 2.0, studies: list[dict] | None = None,
                 first: first_read.ForkedRead | None = None):
        super().__init__()
        self.study_name, self.storage_url, self.refresh_s = study, storage, refresh_s
        self.studies = studies or []
        self.view: D.StudyView | None = None
        self.main: MainScreen | None = None
        self._signature: tuple | None = None
        # started before Textual is: the study is read on another core while Textual starts
        self._first_read = first or (first_read.start(study, storage) if study else None)

    def on_mount(self) -> None:
        if self.study_name:
            self.open_study(self.study_name)
        else:
            self.push_screen(StudyPicker(self.studies))

    @on(StudyPicked)
    def _picked(self, event: StudyPicked) -> None:
        self.open_study(event.name)

    def open_study(self, name: str) -> None:
        self.study_name = name
        self.sub_title = name
        self.main = MainScreen()
        self.push_screen(self.main)
        self.load()
        self.set_interval(self.refresh_s, self.load)

    @work(thread=True, exclusive=True, group="load")
    def load(self) -> None:
        """Read the storage off the UI thread; hand the result to the UI thread."""
        first, self._first_read = self._first_read, None
        try:
            view = first.result() if first else D.load_view(self.study_name, self.storage_url)
        except Exception as e:  # noqa: BLE001 - shown in the UI, the app keeps running
            self.call_from_thread(self.notify, f"cannot read the study: {e}", severity="error")
            return
        self.call_from_thread(self._apply, view)

    def _apply(self, view: D.StudyView) -> None:
        sig = tuple((r.number, r.state, r.status) for r in view.records)
        if sig == self._signature or self.main is None:
            return
        self._signature = sig
        self.view = view
        self.main.show_view(view)

    def action_reload(self) -> None:
        self._signature = None
        self.load()

    @on(ExportRequested)
    def _export_requested(self, event: ExportRequested) -> None:
        self._export(event.number)

    @work(thread=True, group="export")
    def _export(self, number: int) -> None:
        from ..search.export import export_trial  # imports torch: only when asked

        try:
            written, note = export_trial(self.study_name, number, "export", self.storage_url)
            self.call_from_thread(self.notify, (note + "; " if note else "") + "wrote " + ", ".join(map(str, written)))
        except Exception as e:  # noqa: BLE001 - shown to the user
            self.call_from_thread(self.notify, f"export failed: {e}", severity="error")


def open_app(study: str | None, storage: str | None, refresh_s: float = 2.0) -> EvitTui:
    """The app ``evit-search tui`` runs. The study's first read starts at once in a forked process
    (where it can), while this process checks the storage and the study (one-line errors) and then
    starts Textual: the two reads run side by side on two cores."""
    first = first_read.start(study, storage) if study else None
    try:
        studies = st.list_studies(storage)
        if study is None and not studies:
            raise StorageError(f"no studies in {st.normalize_url(storage)}; run `evit-search run` first")
        if study is not None and study not in {s["name"] for s in studies}:
            raise StorageError(f"no study named {study!r} in {st.normalize_url(storage)}; studies there: "
                               + (", ".join(s["name"] for s in studies) or "none"))
    except BaseException:
        if first:
            first.discard()
        raise
    return EvitTui(study, storage, refresh_s=refresh_s, studies=studies, first=first)


def run_tui(study: str | None, storage: str | None) -> int:
    """Check the study/storage first (one-line errors), then start the app."""
    open_app(study, storage).run()
    return 0
