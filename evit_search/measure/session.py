"""Throughput backends and the interleaved measurement session.

This module runs inside the measuring worker process (see :mod:`evit_search.measure`, which
starts it with the allocator set up). It never imports optuna.

Protocol (after the official ``speed_test.py``, with the noise handling these machines need):
every model is prepared once (fold BN, trace/freeze, or export to ONNX) outside the timed region
and warmed up; then timed rounds run round-robin over all (backend, model) pairs, the order
rotating each round, each segment a fixed wall-clock budget. Rounds continue until the median
of every pair is known to ``target_ci`` (relative width of its 95 % confidence interval) or the
time cap is reached. A failure (export error, out of memory...) becomes a record with its reason.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import env as envmod
from .. import hostlock
from ..stats import median, median_ci, paired_ratio, relative_ci_width, spread

BACKENDS = ("torch-cpu", "onnx-cpu", "cuda", "onnx-cuda")


@dataclass(frozen=True)
class ModelSpec:
    """What to measure. ``source`` is ``efficientvit`` (``config`` is a config dict) or ``timm``
    (``timm_name``). ``fold``: fold BN (ours: efficientvit.fuse, deploy mode; timm:
    reparameterize_model). ``jit``: ``none`` (eager), ``trace`` (the official protocol) or
    ``freeze`` (trace + freeze + optimize_for_inference; the deploy default)."""

    label: str
    source: str = "efficientvit"
    config: dict | None = None
    timm_name: str | None = None
    img_size: int = 224
    in_chans: int = 3
    fold: bool = True
    jit: str = "freeze"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Settings:
    batch_size: int = 16
    threads: int = 1
    channels_last: bool = False
    seconds: float = 2.0  # per timed segment
    warmup_s: float = 2.0
    min_rounds: int = 5
    max_rounds: int = 15
    target_ci: float = 0.03
    time_cap_s: float = 600.0
    cuda_batch: int | None = None  # None: largest power of two from 2048 that fits
    cuda_seconds: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ThroughputRecord:
    model: str
    backend: str
    status: str  # ok | failed | skipped
    reason: str | None = None
    batch_size: int | None = None
    threads: int | None = None
    images_per_s: float | None = None
    images_per_s_min: float | None = None
    images_per_s_max: float | None = None
    images_per_s_ci_low: float | None = None
    images_per_s_ci_high: float | None = None
    spread: float | None = None  # max/min - 1 over rounds
    rounds: int = 0
    samples_images_per_s: list[float] = field(default_factory=list)
    reference: str | None = None
    ratio_to_reference: float | None = None  # median of per-round paired ratios
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    ms_per_batch: float | None = None
    seconds_per_segment: float | None = None
    precision: str | None = None  # fp32, or float16-autocast on the GPU
    input_size: int | None = None
    jit: str | None = None
    fold: bool | None = None
    env: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ThroughputRecord":
        return cls(**d)


# --------------------------------------------------------------------------- building models
def build_module(spec: ModelSpec):
    """An eval-mode torch module for ``spec`` (folded if asked), random weights."""

    if spec.source == "efficientvit":
        import efficientvit

        cfg = efficientvit.EfficientViTConfig.from_dict(spec.config)
        model = efficientvit.build(cfg).eval()
        return efficientvit.fuse(model) if spec.fold else model
    if spec.source == "timm":
        import timm
        from timm.utils.model import reparameterize_model

        model = timm.create_model(spec.timm_name, pretrained=False, in_chans=spec.in_chans).eval()
        return reparameterize_model(model) if spec.fold else model
    raise ValueError(f"unknown model source {spec.source!r}")


def _jit(module, example, mode: str):
    import torch

    if mode == "none":
        return module
    with torch.no_grad():
        traced = torch.jit.trace(module, example, check_trace=False)
        if mode == "trace":
            return traced
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))


# --------------------------------------------------------------------------- backends
@dataclass
class Prepared:
    """A model ready to time: ``run`` does one batch. ``enter``/``exit`` run, untimed, around each
    timed segment (the GPU backends allocate their input there and free it after, so models
    measured in one session do not crowd each other out of device memory)."""

    run: Callable[[], Any]
    batch: int
    enter: Callable[[], None] | None = None
    exit: Callable[[], None] | None = None
    precision: str = "fp32"


class Backend:
    name = ""
    sync: Callable[[], None] | None = None  # called after every batch (CUDA)

    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this backend cannot run here, or None."""
        return None

    def activate(self) -> None:
        """Called before each timed segment (process-wide settings such as thread counts)."""

    def prepare(self, spec: ModelSpec) -> Prepared:
        """Everything slow happens here, untimed."""
        raise NotImplementedError


class TorchCPU(Backend):
    name = "torch-cpu"

    def activate(self) -> None:
        import torch

        torch.set_num_threads(self.settings.threads)

    def prepare(self, spec):
        import torch

        self.activate()
        b = self.settings.batch_size
        x = torch.randn(b, spec.in_chans, spec.img_size, spec.img_size)
        module = build_module(spec)
        if self.settings.channels_last:
            module = module.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        fn = _jit(module, x, spec.jit)

        def run():
            with torch.inference_mode():
                fn(x)

        return Prepared(run, b)


def is_out_of_memory(e: BaseException) -> bool:
    """torch's OutOfMemoryError, or onnxruntime's failure to allocate (it raises a plain
    RuntimeException whose text says so)."""
    try:
        import torch

        if isinstance(e, torch.OutOfMemoryError):
            return True
    except ImportError:
        pass
    text = str(e).lower()
    return "out of memory" in text or "failed to allocate memory" in text


def largest_fitting_batch(attempt: Callable[[int], Any], start: int, fixed: bool,
                          cleanup: Callable[[], None] = lambda: None) -> tuple[Any, int]:
    """``(attempt(batch), batch)`` for the largest power-of-two batch from ``start`` down whose
    attempt does not run out of memory (the official GPU protocol). With ``fixed`` the batch was
    asked for by the user: out of memory is then a failure, not a reason to shrink it."""
    batch = start
    while batch >= 1:
        try:
            return attempt(batch), batch
        except Exception as e:
            if fixed or not is_out_of_memory(e):
                raise
            cleanup()
            batch //= 2
    raise RuntimeError(f"out of memory even at batch 1 (started from {start})")


class OnnxCPU(Backend):
    name = "onnx-cpu"
    provider = "CPUExecutionProvider"
    install_hint = "pip install onnxruntime"

    def __init__(self, settings):
        super().__init__(settings)
        self._tmp = tempfile.TemporaryDirectory(prefix="evit-onnx-")

    @classmethod
    def unavailable(cls):
        try:
            import onnxruntime as ort
        except ImportError:
            return f"onnxruntime is not installed ({cls.install_hint})"
        if cls.provider not in ort.get_available_providers():
            return f"onnxruntime has no {cls.provider} here ({cls.install_hint})"
        return None

    def _session(self, spec):
        import onnxruntime as ort

        from .onnx_export import export_onnx

        path = Path(self._tmp.name) / f"{abs(hash(spec.label))}.onnx"
        export_onnx(build_module(spec), path, (spec.in_chans, spec.img_size, spec.img_size))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.settings.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(str(path), opts, providers=[self.provider])

    @staticmethod
    def _input(spec, batch: int):
        import numpy as np

        shape = (batch, spec.in_chans, spec.img_size, spec.img_size)
        return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)

    def prepare(self, spec):
        sess = self._session(spec)
        b = self.settings.batch_size
        x = {"input": self._input(spec, b)}
        sess.run(None, x)

        def run():
            sess.run(None, x)

        return Prepared(run, b)


class Cuda(Backend):
    """The official GPU protocol: BN folded, traced, fp16 autocast, the largest power-of-two batch
    that fits (from 2048, halving on out-of-memory), synchronised after every batch.

    The input lives on the device only during this model's timed segments (``enter``/``exit``),
    so the batch that fits is found with no other model's activations or inputs resident."""

    name = "cuda"
    device = "cuda"
    amp_dtype = "float16"

    @classmethod
    def unavailable(cls):
        import torch

        return None if torch.cuda.is_available() else "no CUDA GPU on this machine"

    def sync(self):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()

    def _release(self):
        """Hand torch's cached device memory back: onnx-cuda, timed in the same session, allocates
        outside torch's cache."""
        import torch

        if self.device == "cuda":
            torch.cuda.empty_cache()

    def _free(self):
        """After an out-of-memory attempt: its tensors may live on in reference cycles (the
        exception's frames), so collect them before releasing the cache."""
        gc.collect()
        self._release()

    def prepare(self, spec):
        import torch

        dtype = getattr(torch, self.amp_dtype)
        module = build_module(spec).to(self.device)
        shape = (spec.in_chans, spec.img_size, spec.img_size)
        state: dict[str, Any] = {}

        def attempt(batch):
            x = torch.randn(batch, *shape, device=self.device)
            try:
                with torch.autocast(self.device, dtype=dtype):
                    fn = _jit(module, x, "none" if spec.jit == "none" else "trace")
                    with torch.inference_mode():
                        fn(x)
                self.sync()
                return fn
            finally:
                del x

        fn, batch = largest_fitting_batch(attempt, self.settings.cuda_batch or 2048,
                                          fixed=bool(self.settings.cuda_batch), cleanup=self._free)

        def enter():
            state["x"] = torch.randn(batch, *shape, device=self.device)
            run()  # the allocator settles outside the timed region
            self.sync()

        def run():
            with torch.inference_mode(), torch.autocast(self.device, dtype=dtype):
                fn(state["x"])

        def exit():
            state.pop("x", None)  # the last reference: the input is freed here, no collection needed
            self._release()

        return Prepared(run, batch, enter, exit, precision=f"{self.amp_dtype}-autocast")


class OnnxCuda(OnnxCPU):
    """ONNX Runtime's CUDA provider, fp32, with the input and output bound on the device
    (IOBinding) so that no host copy is timed; batch as for ``cuda`` but from 256."""

    name = "onnx-cuda"
    provider = "CUDAExecutionProvider"
    install_hint = "pip install onnxruntime-gpu"
    device = "cuda"

    def prepare(self, spec):
        import onnxruntime as ort

        sess = self._session(spec)
        state: dict[str, Any] = {}

        def bind(batch):
            binding = sess.io_binding()
            value = ort.OrtValue.ortvalue_from_numpy(self._input(spec, batch), self.device, 0)
            binding.bind_ortvalue_input("input", value)
            binding.bind_output(sess.get_outputs()[0].name, self.device)
            return binding, value

        def attempt(batch):
            binding, value = bind(batch)
            sess.run_with_iobinding(binding)
            return batch

        _, batch = largest_fitting_batch(attempt, self.settings.cuda_batch or 256,
                                         fixed=bool(self.settings.cuda_batch), cleanup=gc.collect)

        def enter():
            state["io"] = bind(batch)
            run()

        def run():
            sess.run_with_iobinding(state["io"][0])  # synchronises the provider's stream itself

        def exit():
            state.pop("io", None)

        return Prepared(run, batch, enter, exit)


BACKEND_CLASSES = {cls.name: cls for cls in (TorchCPU, OnnxCPU, Cuda, OnnxCuda)}


# --------------------------------------------------------------------------- timing
def timed_segment(run: Callable[[], Any], batch: int, seconds: float, sync=None) -> float:
    """Images per second over one segment of at least ``seconds`` and 2 batches."""
    n = 0
    t0 = time.perf_counter()
    while True:
        run()
        if sync is not None:
            sync()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 2:
            return n * batch / elapsed


def _segment(prepared: Prepared, backend: Backend, seconds: float) -> float:
    """One timed segment, with the backend's untimed set-up and tear-down around it."""
    backend.activate()
    if prepared.enter:
        prepared.enter()
    try:
        return timed_segment(prepared.run, prepared.batch, seconds, backend.sync)
    finally:
        if prepared.exit:
            prepared.exit()


def run_session(specs: list[ModelSpec], backends: list[str], settings: Settings,
                reference: str | None = None, emit: Callable[[dict], None] = lambda e: None) -> list[ThroughputRecord]:
    """Measure every spec on every backend in one interleaved session. Holds the host lock."""
    with hostlock.measuring() as waited:
        emit({"event": "locked", "waited_s": waited})
        return _session(specs, backends, settings, reference, emit)


def _session(specs, backends, settings, reference, emit, classes=None):
    classes = classes or BACKEND_CLASSES
    environment = envmod.fingerprint(threads=settings.threads)
    records: dict[tuple[str, str], ThroughputRecord] = {}
    runners: dict[tuple[str, str], tuple[Prepared, Backend]] = {}
    samples: dict[tuple[str, str], list[float]] = {}

    def base(spec, bname, **kw):
        return ThroughputRecord(model=spec.label, backend=bname, threads=settings.threads, reference=reference,
                                input_size=spec.img_size, jit=spec.jit, fold=spec.fold, env=environment, **kw)

    def seconds_for(backend):
        return settings.cuda_seconds if backend.name.endswith("cuda") and settings.cuda_seconds else settings.seconds

    for bname in backends:
        backend = classes[bname](settings)
        why = backend.unavailable()
        for spec in specs:
            key = (bname, spec.label)
            if why:
                records[key] = base(spec, bname, status="skipped", reason=why)
                continue
            emit({"event": "prepare", "backend": bname, "model": spec.label})
            try:
                prepared = backend.prepare(spec)
                _segment(prepared, backend, settings.warmup_s)
            except Exception as e:  # noqa: BLE001 - any failure becomes a record with its reason
                records[key] = base(spec, bname, status="failed", reason=_reason(e))
                emit({"event": "failed", "backend": bname, "model": spec.label, "reason": records[key].reason})
                continue
            runners[key] = (prepared, backend)
            samples[key] = []
        if why:
            emit({"event": "skipped", "backend": bname, "reason": why})

    t_start = time.monotonic()
    keys = list(runners)
    rounds = 0
    while keys and rounds < settings.max_rounds:
        shift = rounds % len(keys)
        for key in keys[shift:] + keys[:shift]:  # rotate so no pair always runs first
            if key not in runners:
                continue
            prepared, backend = runners[key]
            try:
                ips = _segment(prepared, backend, seconds_for(backend))
            except Exception as e:  # noqa: BLE001
                records[key] = base(_spec_by_label(specs, key[1]), key[0], status="failed", reason=_reason(e))
                del runners[key]
                continue
            samples[key].append(ips)
            emit({"event": "sample", "backend": key[0], "model": key[1], "round": rounds + 1, "images_per_s": ips})
        keys = [k for k in keys if k in runners]
        rounds += 1
        emit({"event": "round", "round": rounds})
        if rounds >= settings.min_rounds:
            worst = max((relative_ci_width(samples[k]) for k in keys), default=0.0)
            if worst <= settings.target_ci or time.monotonic() - t_start > settings.time_cap_s:
                break

    for key, (prepared, backend) in runners.items():
        spec = _spec_by_label(specs, key[1])
        xs = samples[key]
        lo, hi = median_ci(xs)
        batch = prepared.batch
        rec = base(spec, key[0], status="ok", batch_size=batch, images_per_s=median(xs),
                   images_per_s_min=min(xs), images_per_s_max=max(xs), images_per_s_ci_low=lo,
                   images_per_s_ci_high=hi, spread=spread(xs), rounds=len(xs), samples_images_per_s=xs,
                   ms_per_batch=1000.0 * batch / median(xs), seconds_per_segment=seconds_for(backend),
                   precision=prepared.precision)
        ref_key = (key[0], reference)
        if reference and ref_key in samples and len(samples[ref_key]) == len(xs):
            ratios = paired_ratio(xs, samples[ref_key])
            rec.ratio_to_reference = median(ratios)
            rec.ratio_ci_low, rec.ratio_ci_high = median_ci(ratios)
        records[key] = rec
    order = [(b, s.label) for b in backends for s in specs]
    return [records[k] for k in order if k in records]


def _spec_by_label(specs, label):
    return next(s for s in specs if s.label == label)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _reason(e: BaseException) -> str:
    text = _ANSI.sub("", str(e)).strip()
    msg = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {msg}"[:500]


# --------------------------------------------------------------------------- worker entry point
def worker_main(job_path: str) -> int:
    """``python -m evit_search.measure.session JOB.json``: JSON events on stdout, one per line."""
    job = json.loads(Path(job_path).read_text())
    specs = [ModelSpec(**s) for s in job["specs"]]
    settings = Settings(**job["settings"])

    def emit(event):
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    try:
        records = run_session(specs, job["backends"], settings, job.get("reference"), emit)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises MeasurementError
        emit({"event": "error", "reason": _reason(e), "traceback": traceback.format_exc()})
        return 1
    emit({"event": "done", "records": [r.to_dict() for r in records]})
    return 0


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(worker_main(sys.argv[1]))

