"""Throughput backends: each prepares a model (fold BN, trace or freeze, or export to ONNX)
outside the timed region and hands back one batch to time. Runs inside the measuring worker."""

from __future__ import annotations

import gc
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import efficientvit

from .onnx_export import export_onnx
from .records import ModelSpec, Settings

CUDA_SEARCH_FROM = 2048  # the official speed test's batch; halved on out-of-memory
ONNX_CUDA_SEARCH_FROM = 256


# --------------------------------------------------------------------------- building models
def build_module(spec: ModelSpec):
    """An eval-mode torch module for ``spec`` (folded if asked), random weights."""

    if spec.source == "efficientvit":
        cfg = efficientvit.EfficientViTConfig.from_dict(spec.config)
        model = efficientvit.build(cfg).eval()
        return efficientvit.fuse(model) if spec.fold else model
    if spec.source == "timm":
        import timm  # only for the peers that bench measures: a second of import saved per session
        from timm.utils.model import reparameterize_model

        model = timm.create_model(spec.timm_name, pretrained=False, in_chans=spec.in_chans).eval()
        return reparameterize_model(model) if spec.fold else model
    raise ValueError(f"unknown model source {spec.source!r}")


def _jit(module, example, mode: str):
    if mode == "none":
        return module
    # torch 2.14+ marks the TorchScript API deprecated (FutureWarning at every call); it stays the
    # deploy path (the paper's protocol) until a measured replacement exists, so users are not told
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit\.")
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

        torch.set_num_threads(self.settings.threads)

    def prepare(self, spec):

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
            import onnxruntime as ort  # checking that it can be imported is the point
        except ImportError:
            return f"onnxruntime is not installed ({cls.install_hint})"
        if cls.provider not in ort.get_available_providers():
            return f"onnxruntime has no {cls.provider} here ({cls.install_hint})"
        return None

    def _session(self, spec):
        import onnxruntime as ort  # only ONNX backends load it


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

        return None if torch.cuda.is_available() else "no CUDA GPU on this machine"

    def sync(self):

        if self.device == "cuda":
            torch.cuda.synchronize()

    def _release(self):
        """Hand torch's cached device memory back: onnx-cuda, timed in the same session, allocates
        outside torch's cache."""

        if self.device == "cuda":
            torch.cuda.empty_cache()

    def _free(self):
        """After an out-of-memory attempt: its tensors may live on in reference cycles (the
        exception's frames), so collect them before releasing the cache."""
        gc.collect()
        self._release()

    def prepare(self, spec):

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

        fn, batch = largest_fitting_batch(attempt, self.settings.cuda_batch or CUDA_SEARCH_FROM,
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
        import onnxruntime as ort  # only ONNX backends load it

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

        _, batch = largest_fitting_batch(attempt, self.settings.cuda_batch or ONNX_CUDA_SEARCH_FROM,
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
