"""Environment fingerprint recorded with every measurement."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from importlib import metadata

# glibc tuning that stops torch from re-mapping and page-faulting large buffers on every batch
# (measured on 2-core VMs: up to 2.5x slower conv nets, uneven repeats). Read by glibc at process start,
# so it is set in the environment of the measuring worker process.
GLIBC_TUNED = {
    "MALLOC_MMAP_THRESHOLD_": "4294967296",
    "MALLOC_TRIM_THRESHOLD_": "68719476736",
    "MALLOC_TOP_PAD_": "1073741824",
}


def allocator(environ=os.environ) -> str:
    preload = environ.get("LD_PRELOAD", "")
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if name in preload:
            return name
    if all(environ.get(k) == v for k, v in GLIBC_TUNED.items()):
        return "glibc (mmap/trim thresholds raised)"
    return "glibc (default)"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine_name() -> str:
    """Short name for report files: host and CPU, e.g. ``host-amd-epyc-7b13``."""
    cpu = cpu_model().lower()
    for junk in ("(r)", "(tm)", "processor", "cpu", "@"):
        cpu = cpu.replace(junk, " ")
    slug = "-".join(w for w in cpu.replace("-", " ").split() if not w.endswith("ghz"))[:40]
    return f"{socket.gethostname().split('.')[0]}-{slug}".strip("-")


def fingerprint(threads: int | None = None, with_gpu: bool = True) -> dict:
    """CPU model, cores, threads, allocator, library versions and, if present, the GPU."""
    env = {
        "host": socket.gethostname(),
        "machine": machine_name(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "allocator": allocator(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for pkg in ("torch", "onnxruntime", "timm", "evit-search"):
        env[f"{pkg.replace('-', '_')}_version"] = _version(pkg)
    if with_gpu:
        try:
            import torch  # the GPU's name; the TUI takes a fingerprint without torch

            if torch.cuda.is_available():
                env["gpu_name"] = torch.cuda.get_device_name(0)
                env["cuda_version"] = torch.version.cuda
                env["gpu_driver"] = _nvidia_driver()
        except ImportError:
            pass
    return env


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None
