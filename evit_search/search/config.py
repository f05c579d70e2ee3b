"""What a search run is asked to do (:class:`RunConfig`), checked before anything is stored."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import efficientvit

from ..errors import UserError
from ..measure.records import Settings
from ..measure.runner import usable_backends
from ..storage import SAMPLERS, local_path, storage_identity
from ..training.device import check_precision, resolve_device
from ..training.protocols import get_protocol
from . import fidelity
from .budget import Budget, parse_budget
from .prefilter import parse_prefilter
from .space import SearchSpace, load_space


@dataclass
class RunConfig:
    """Everything a worker needs; plain data so it crosses process boundaries."""

    space: str = "efficientvit"
    budget: str = "1.25x"
    reference: str | None = None  # default: the space's
    backend: str = "torch-cpu"
    also_measure: list[str] = field(default_factory=list)  # more backends, measured and stored, not budgeted
    sampler: str = "nsga2"
    seed: int = 0
    study: str | None = None
    storage: str | None = None
    trials: int | None = None
    timeout: float | None = None
    jobs: int = 1
    data: str = "fashion-mnist"
    data_dir: str | None = None
    classes: int | None = None
    per_class: int | None = None
    protocol: str = "proxy"
    epochs: int | None = None
    train_threads: int | None = None
    device: str = "auto"  # training device, resolved on each host
    precision: str = "fp32"  # fp32 (the official recipe) or amp (GPU only)
    runs_dir: str | None = None  # default: beside the storage (see runs_root)
    measure: dict = field(default_factory=lambda: asdict(Settings(seconds=1.0, warmup_s=1.0, min_rounds=6, max_rounds=10)))
    train_reference: bool = True
    ref_seeds: int = 3  # the reference is trained this many times: the seed noise every delta is judged by
    attempts: int = 2  # an architecture whose trial failed or was interrupted is tried at most this often
    paper_models: bool = True  # enqueue M0-M5 (those in the space) as the first trials
    fidelity: str = "full"  # full: every feasible candidate trains in full; sh: successive halving over rungs
    eta: int = 3  # successive halving: the top 1/eta of a rung is promoted; rungs are eta^-2, eta^-1, 1
    rungs: int | None = None  # successive halving: how many (None: fidelity.rung_count for the protocol)
    predict: bool = True  # skip candidates a throughput model predicts well below the budget
    predict_audit: bool = False  # measure them anyway and mark them (benchmarks check the skips)
    zerocost: bool = True  # zero-cost scores (seconds) on every measured candidate, stored for calibration
    prefilter: str | None = None  # SCORE:FRACTION: feasible candidates in the worst FRACTION are screened

    def settings(self) -> Settings:
        return Settings(**self.measure)

    def resume_key(self) -> dict:
        """Settings that change what a stored trial means: a resumed study, and every worker that
        joins it, must keep them (the training device's kind and precision included: fp16 GPU
        and fp32 CPU accuracies are not one population)."""
        return {"space": self.space, "budget": self.budget, "reference": self.reference, "backend": self.backend,
                "data": self.data, "protocol": self.protocol, "epochs": self.epochs, "classes": self.classes,
                "per_class": self.per_class, "seed": self.seed, "train_device": self.device_kind(),
                "precision": self.precision, "fidelity": self.fidelity, "eta": self.eta if self.fidelity == "sh" else None,
                "rungs": self.rung_fractions() if self.fidelity == "sh" else None}

    def rung_fractions(self) -> list[float]:
        """The shares of the protocol's training at which successive halving ranks (``[1.0]``
        without it): ``rungs`` of them, or as many as :func:`fidelity.rung_count` allows."""
        if self.fidelity != "sh":
            return [1.0]
        p = get_protocol(self.protocol, epochs=self.epochs)
        return fidelity.fractions(self.eta, self.rungs or fidelity.rung_count(self.eta, p.epochs, p.warmup_epochs))

    def runs_root(self) -> Path:
        """Where trained candidates are saved: ``--runs-dir``, else beside the storage file
        (``runs/evit-search.db`` -> ``runs/evit-search-runs/``), else (a database server) under
        ``~/.cache/evit-search/runs/<storage id>/``."""
        if self.runs_dir:
            return Path(self.runs_dir)
        path = local_path(self.storage)
        if path is not None:
            return path.parent / f"{path.stem}-runs"
        return Path.home() / ".cache" / "evit-search" / "runs" / storage_identity(self.storage)

    def population(self) -> int:
        """NSGA-II's population: never more than half the trials this run asks for (between 4
        and 16), so that a short run gets past its random first generation and learns."""
        return 16 if self.trials is None else max(4, min(16, self.trials // 2))

    def device_kind(self) -> str:
        return "cuda" if resolve_device(self.device).startswith("cuda") else "cpu"

    def default_study_name(self) -> str:
        budget = self.budget.replace(",", "_").replace("<", "lt").replace("=", "")
        return f"{Path(self.space).stem}-{budget}-{self.data.split(':')[0]}-{self.protocol}"


def check_run_config(rc: RunConfig) -> tuple[SearchSpace, Budget]:
    """Every user input checked before anything is stored; fills in the space's reference."""
    space = load_space(rc.space)
    rc.reference = rc.reference or space.reference
    if rc.reference not in efficientvit.list_models():
        raise UserError(f"--reference {rc.reference!r} is not a model name (see `evit-search models`)")
    budget = parse_budget(rc.budget, space.limits)
    rc.also_measure = [b for b in dict.fromkeys(rc.also_measure) if b != rc.backend]
    usable_backends([rc.backend], "--backend")
    if rc.also_measure:
        usable_backends(rc.also_measure, "--also-measure")
    check_precision(rc.precision, resolve_device(rc.device))
    if rc.fidelity not in ("full", "sh"):
        raise UserError(f"--fidelity={rc.fidelity!r} is not one of full, sh")
    if rc.eta < 2:
        raise UserError(f"--eta={rc.eta} must be at least 2")
    if rc.rungs is not None and rc.rungs < 2:
        raise UserError(f"--rungs={rc.rungs} must be at least 2 (successive halving ranks at a lower rung, then trains in full)")
    if parse_prefilter(rc.prefilter) is not None and not rc.zerocost:
        raise UserError(f"--prefilter={rc.prefilter} needs the zero-cost scores: drop --no-zerocost")
    if rc.sampler not in SAMPLERS:
        raise UserError(f"--sampler {rc.sampler!r} is not one of {', '.join(SAMPLERS)}")
    if rc.trials is None and rc.timeout is None:
        raise UserError("give --trials N or --timeout SECONDS (or both)")
    for flag, v in (("--trials", rc.trials), ("--timeout", rc.timeout), ("--jobs", rc.jobs), ("--epochs", rc.epochs),
                    ("--train-threads", rc.train_threads), ("--classes", rc.classes), ("--per-class", rc.per_class),
                    ("--ref-seeds", rc.ref_seeds), ("--attempts", rc.attempts)):
        if v is not None and v <= 0:
            raise UserError(f"{flag}={v} must be positive")
    get_protocol(rc.protocol, epochs=rc.epochs)
    if rc.sampler == "grid":
        space.grid()
    return space, budget
