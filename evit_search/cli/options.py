"""Options shared by several commands, and turning them into the domain's values. Every count
or size is checked by its type here, so a mistake is one line naming the flag (exit 2) before
anything runs or is stored."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

import efficientvit

from .. import hostlock
from ..errors import UserError
from ..measure.records import Settings
from ..training.protocols import get_protocol


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", help="Optuna storage URL or path (default: sqlite:///runs/evit-search.db, or $EVIT_STORAGE)")


def add_measure_options(p: argparse.ArgumentParser, seconds: float = 2.0, backends: str = "torch-cpu,onnx-cpu,cuda") -> None:
    g = p.add_argument_group("measurement")
    g.add_argument("--backends", default=backends,
                   help="comma-separated: torch-cpu, onnx-cpu, cuda, onnx-cuda (GPU ones are skipped without a GPU)")
    g.add_argument("--seconds", type=positive_float, default=seconds, help="seconds per timed segment (default %(default)s)")
    g.add_argument("--warmup", type=positive_float, default=None, help="warm-up seconds per model (default: = --seconds)")
    g.add_argument("--threads", type=positive_int, default=1, help="CPU threads (default 1, the paper's protocol)")
    g.add_argument("--batch", type=positive_int, default=16, help="CPU batch size (default 16, the paper's protocol)")
    g.add_argument("--rounds", type=positive_int, default=6,
                   help="minimum interleaved rounds (default %(default)s: 6 is the fewest whose median interval covers "
                        "95 %%; with fewer, the intervals printed (ablate's ratios) say their real coverage, e.g. "
                        "93.8 %% CI at 5)")
    g.add_argument("--max-rounds", type=positive_int, default=15)
    g.add_argument("--target-ci", type=positive_float, default=0.03,
                   help="stop adding rounds when every median's 95%% CI is this narrow, relative (default %(default)s)")
    g.add_argument("--time-cap", type=positive_float, default=1800.0, help="seconds after which no round is added")
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--gpu-batch", type=positive_int, default=None,
                   help="GPU batch size (default: the largest power of two that fits, from 2048 for cuda and 256 for "
                        "onnx-cuda, the official protocol)")
    g.add_argument("--gpu-seconds", type=positive_float, default=None,
                   help="seconds per timed segment on the GPU backends (default: = --seconds)")


def measure_settings(args) -> Settings:
    if args.max_rounds < args.rounds:
        raise UserError(f"--max-rounds={args.max_rounds} must be >= --rounds={args.rounds}")
    return Settings(batch_size=args.batch, threads=args.threads, channels_last=args.channels_last,
                    seconds=args.seconds, warmup_s=args.warmup if args.warmup is not None else args.seconds,
                    min_rounds=args.rounds, max_rounds=args.max_rounds, target_ci=args.target_ci,
                    time_cap_s=args.time_cap, cuda_batch=args.gpu_batch, cuda_seconds=args.gpu_seconds)


def add_data_options(p: argparse.ArgumentParser, default_protocol: str = "proxy") -> None:
    g = p.add_argument_group("data and protocol")
    g.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist (default), cifar10, cifar100, imagefolder:PATH, digits, synthetic")
    g.add_argument("--data-dir", help="where the dataset lies (else $EVIT_DATA, ~/.cache/evit-search/data, /usr/share/datasets)")
    g.add_argument("--classes", type=positive_int, help="keep the first N classes")
    g.add_argument("--per-class", type=positive_int, help="keep at most N training images per class")
    g.add_argument("--protocol", default=default_protocol, help="paper, ablation, proxy-gpu, proxy (default), proxy-fast")
    g.add_argument("--epochs", type=positive_int, help="override the protocol's epochs")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--train-threads", type=positive_int,
                   help="threads for training (default: all cores, shared out among --jobs workers)")
    g.add_argument("--device", default="auto",
                   help="training device: auto (default: the GPU when there is one), cpu, cuda, cuda:N")
    g.add_argument("--amp", action="store_true",
                   help="GPU only: train with fp16 autocast and loss scaling (faster; the official recipe trains fp32)")


def training_inputs(args):
    """(device, precision, protocol, dataset) from the data-and-protocol options, checked in that
    order, cheap first: a bad --device is reported before a dataset is read. Reading, decoding
    and resizing the data is CPU-heavy: it holds the host lock shared, never beside a timing."""
    from ..training.data import load_dataset  # torch: loaded when a command trains, not for --help
    from ..training.device import check_precision, resolve_device

    device = resolve_device(args.device)
    precision = check_precision("amp" if args.amp else "fp32", device)
    protocol = get_protocol(args.protocol, epochs=args.epochs)
    with hostlock.working("loading and resizing data"):
        bundle = load_dataset(args.data, args.data_dir, max_classes=args.classes, per_class=args.per_class,
                              resolution=protocol.img_size)
    return device, precision, protocol, bundle


def load_model_or_config(text: str):
    """A registered model name or a YAML/JSON file holding an EfficientViTConfig dict."""
    if text in efficientvit.list_models():
        return efficientvit.get_config(text)
    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise UserError(f"MODEL_OR_CONFIG: {text} is not a file")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise UserError(f"{text}: not valid YAML/JSON ({str(e).splitlines()[0]})") from None
        if isinstance(data, dict) and "config" in data:
            data = data["config"]
        return efficientvit.EfficientViTConfig.from_dict(data).validate()
    raise UserError(f"MODEL_OR_CONFIG: {text!r} is neither a model name ({', '.join(efficientvit.list_models()[:6])}, ...) "
                    "nor a config file")
