"""``models``, ``train`` and ``data``: the model family, one training run, datasets.

The domain modules that load torch are imported inside the handlers, so that ``--help`` and the
parser stay fast."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

import efficientvit

from .. import hostlock
from ..errors import UserError
from ..reporting.markdown import fmt
from .options import add_data_options, load_model_or_config, training_inputs
from .progress import TrainProgress, progress


def add(sub) -> None:
    p = sub.add_parser("models", help="list the named models (M0-M5 and the Table 6 variants)")
    p.set_defaults(func=run_models)

    p = sub.add_parser("train", help="train one model with a protocol and save a checkpoint")
    p.add_argument("model", metavar="MODEL_OR_CONFIG", help="a model name (see `evit-search models`) or a config YAML/JSON")
    p.add_argument("--out", help="checkpoint file (default: checkpoints/<name>-<protocol>-<data>.pt)")
    p.add_argument("--checkpoint-dir", help="per-epoch checkpoints here; an interrupted run resumes from them")
    add_data_options(p)
    p.set_defaults(func=run_train)

    p = sub.add_parser("data", help="find or fetch datasets")
    p.add_argument("action", choices=["fetch", "info"])
    p.add_argument("dataset", nargs="?", default="fashion-mnist")
    p.add_argument("--data-dir", help="where to put (fetch) or look for (info) the dataset")
    p.set_defaults(func=run_data)


def run_models(args) -> int:
    t = Table("name", "description", "C", "L", "H")
    for name in efficientvit.list_models():
        cfg = efficientvit.get_config(name)
        t.add_row(name, efficientvit.describe(name), str([s.dim for s in cfg.stages]),
                  str([s.depth for s in cfg.stages]), str([s.num_heads for s in cfg.stages]))
    Console().print(t)
    return 0


def run_train(args) -> int:
    from ..training.trainer import save_model, train  # torch: loaded when the command runs, not for --help

    console = Console()
    cfg = load_model_or_config(args.model)
    device, precision, protocol, bundle = training_inputs(args)
    name = Path(args.model).stem if not args.model.startswith("efficientvit") else args.model
    console.print(f"training {name} on {bundle.describe(protocol.img_size)} with protocol {protocol.name} "
                  f"({protocol.description}) on {device}")
    with progress() as prog:
        tp = TrainProgress(prog, name)
        result = train(cfg, bundle, protocol, seed=args.seed, checkpoint_dir=args.checkpoint_dir,
                       threads=args.train_threads, on_step=tp.on_step, on_epoch=tp.on_epoch, device=device,
                       precision=precision)
    if result.status != "ok":
        console.print(f"[red]training failed:[/] {result.reason}")
        return 1
    out = Path(args.out or f"checkpoints/{name}-{protocol.name}-{args.data.replace(':', '_').replace('/', '_')}.pt")
    # the names of the outputs, in label order, so the checkpoint can be read without the dataset
    names = list(bundle.class_names) if bundle.class_names is not None else None
    save_model(out, result.model, result.config, {"result": result.to_dict(), "class_names": names})
    n = result.splits
    console.print(f"val top-1 {result.top1:.2f}% ({n['val']} images held out from train), test top-1 "
                  f"{fmt(result.test_top1, 2)}% ({n['test']} test images); one seed ({args.seed}): repeat with other "
                  f"--seed values to see the seed noise")
    console.print(f"{result.wall_s:.0f} s in all, {result.train_s:.0f} s training at {result.train_images_per_s:.0f} img/s; "
                  f"saved {out} (efficientvit.load_model reads it)")
    return 0


def run_data(args) -> int:
    from ..training.data import fetch_fashion_mnist, load_dataset  # torch: loaded when the command runs, not for --help

    console = Console()
    if args.action == "fetch":
        if args.dataset != "fashion-mnist":
            raise UserError(f"data fetch: only fashion-mnist can be fetched; for {args.dataset} download it and pass --data-dir")
        console.print(f"fetched into {fetch_fashion_mnist(args.data_dir)}")
        return 0
    with hostlock.working("loading data"):  # decoding an image folder is CPU-heavy: never beside a timing
        bundle = load_dataset(args.dataset, args.data_dir)
    console.print(bundle.describe())
    return 0
