"""Study storage: the one package that imports Optuna. It never imports torch, so the TUI and the
reports read studies quickly. Everything else sees :class:`StudyStore`, :class:`TrialHandle` and
plain :class:`TrialRecord` values."""

from .records import (
                      FINISHED,
                      KIND_ATTR,
                      KNOBS,
                      Summary,
                      TrialRecord,
                      jsonable,
                      knob_text,
                      lower_rung_front,
                      measurement_attr,
                      pareto_front,
                      stage_values,
                      status_counts,
                      summarize,
                      to_dataframe,
)
from .samplers import SAMPLERS, make_sampler
from .study import Claim, StudyStore, TrialHandle, create_study, list_studies, load_study
from .urls import (
                      DEFAULT_DB,
                      default_storage_url,
                      display_url,
                      local_path,
                      normalize_url,
                      open_storage,
                      storage_identity,
                      storage_lock,
)

__all__ = ["DEFAULT_DB", "FINISHED", "KIND_ATTR", "KNOBS", "SAMPLERS", "Claim", "StudyStore", "Summary", "TrialHandle",
           "TrialRecord", "create_study", "default_storage_url", "display_url", "jsonable", "knob_text",
           "list_studies", "load_study", "local_path", "lower_rung_front", "make_sampler", "measurement_attr",
           "normalize_url", "open_storage", "pareto_front", "stage_values", "status_counts", "storage_identity",
           "storage_lock", "summarize", "to_dataframe"]
