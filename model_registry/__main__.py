"""python -m model_registry train|list|show|generate

train [--data CSV] [--family mechanical|ballistic|hardness] [--trees N] [--seed N]
                            (hardness reads data/vickers_hardness_measured.csv unless --data is
                            given with --family hardness)
ensure                      (train only the families the store has no model of)
list [--family F]
show TAG
generate [--rows N] [--out CSV]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from features.catalogue import FAMILIES
from features.families import ALL_FAMILIES
from model_registry import hardness, store
from model_registry.datagen import generate
from model_registry.dataset import DatasetError, file_sha256, read_csv, write_csv
from model_registry.train import TrainingConfig, train_family

REFERENCE_CSV = Path(__file__).resolve().parent.parent / "data" / "reference_materials.csv"
REFERENCE_ROWS = 16000


def ensure_reference_data(path: Path = REFERENCE_CSV, rows: int = REFERENCE_ROWS) -> Path:
    """Write the seeded reference table if it is not there yet."""
    if not path.exists():
        print(f"generating {rows} reference rows into {path}", flush=True)
        write_csv(path, *generate(rows))
    return path


def cmd_generate(args) -> int:
    write_csv(Path(args.out), *generate(args.rows, seed=args.seed))
    print(f"wrote {args.rows} rows to {args.out} (sha256 {file_sha256(Path(args.out))})")
    return 0


def cmd_train(args) -> int:
    families = [args.family] if args.family else list(ALL_FAMILIES)
    material = [f for f in families if f in FAMILIES]
    if material:
        data = Path(args.data) if args.data else ensure_reference_data()
        batch, targets = read_csv(data)
        digest = file_sha256(data)
        config = TrainingConfig(n_estimators=args.trees or TrainingConfig.n_estimators, seed=args.seed)
        for family in material:
            trained = train_family(batch, targets, family, config, progress=lambda m: print(m, flush=True))
            print(f"saved {store.save(trained, digest)}")
            _print_metrics(trained.metrics)
    if "hardness" in families:
        cmd_train_hardness(Path(args.data) if args.data and args.family == "hardness" else hardness.DATA_CSV, args)
    return 0


def cmd_train_hardness(data: Path, args) -> None:
    """The formula -> hardness model from measured data, with its grouped-CV evaluation on the card."""
    config = hardness.HardnessConfig(n_estimators=args.trees or hardness.HardnessConfig.n_estimators, seed=args.seed)
    trained = hardness.train_hardness(hardness.read_hardness_csv(data), config, lambda m: print(m, flush=True))
    print(f"saved {store.save(trained, file_sha256(data))}")
    _print_metrics(trained.metrics)
    evaluation = trained.card_extra["evaluation"]
    for name in ("model", "ridge", "mean_predictor"):
        m = evaluation[name]
        print(f"  grouped CV {name:15s} MAE {m['mae']:6.2f}  RMSE {m['rmse']:6.2f}  R2 {m['r2']:6.3f} (GPa)")


# The pins the service reads (settings.py); `ensure` verifies the model each family will serve.
PIN_VARIABLES = {
    "mechanical": "MECHANICAL_MODEL_TAG",
    "ballistic": "BALLISTIC_MODEL_TAG",
    "hardness": "HARDNESS_MODEL_TAG",
}


def cmd_ensure(args) -> int:
    """Train the reference models of the families the store has none of, then load the model each
    family will serve (pinned or newest): checksums and feature schema verified, so `make serve`
    stops with one line naming a corrupt file instead of starting runners that cannot load."""
    missing = [f for f in ALL_FAMILIES if not store.list_models(f)]
    for family in missing:
        print(f"no {family} model in the store: training the reference model", flush=True)
        cmd_train(argparse.Namespace(data=None, family=family, trees=args.trees, seed=args.seed))
    for family in ALL_FAMILIES:
        model = store.load(family, os.environ.get(PIN_VARIABLES[family]) or None)
        print(f"{family}: {model.tag} verified (checksums, feature schema); the service will serve it")
    return 0


def _print_metrics(metrics: dict) -> None:
    print(f"  {'target':24s} {'R2':>7s} {'MAE':>10s} {'cov95':>7s} {'width':>10s} {'n_test':>6s}")
    for target, m in metrics.items():
        print(
            f"  {target:24s} {m['r2']:7.3f} {m['mae']:10.4g} {m['coverage_95']:7.3f} "
            f"{m['mean_interval_width']:10.4g} {m['test_samples']:6d}"
        )


def cmd_list(args) -> int:
    models = store.list_models(args.family)
    if not models:
        print("the model store holds no armor models; run: python -m model_registry train")
    for m in models:
        meta: dict[str, Any] = dict(m.info.metadata)
        print(f"{str(m.tag):40s} {meta.get('created_at', '?'):26s} samples={meta.get('samples', {}).get('total')}")
        _print_metrics(meta.get("metrics", {}))
    return 0


def cmd_show(args) -> int:
    family = args.tag.split(":")[0].removeprefix("armor_")
    stored = store.resolve(family, args.tag)
    print(json.dumps({"tag": str(stored.tag), "path": stored.path, **stored.info.metadata}, indent=2, default=str))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m model_registry", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train, evaluate and save models")
    train.add_argument("--data", help="CSV with the columns of data/reference_materials.csv (targets may be empty)")
    train.add_argument("--family", choices=ALL_FAMILIES)
    train.add_argument("--trees", type=int, help="trees per target (default: the family's own)")
    train.add_argument("--seed", type=int, default=TrainingConfig.seed)
    ensure = sub.add_parser("ensure", help="train reference models for families with none stored")
    ensure.add_argument("--trees", type=int, help="trees per target (default: the family's own)")
    ensure.add_argument("--seed", type=int, default=TrainingConfig.seed)
    sub.add_parser("list", help="list stored models with their metrics").add_argument("--family", choices=ALL_FAMILIES)
    sub.add_parser("show", help="print a model's stored metadata").add_argument("tag")
    gen = sub.add_parser("generate", help="write a synthetic reference table")
    gen.add_argument("--rows", type=int, default=REFERENCE_ROWS)
    gen.add_argument("--seed", type=int, default=20261126)
    gen.add_argument("--out", default=str(REFERENCE_CSV))
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"train": cmd_train, "ensure": cmd_ensure, "list": cmd_list, "show": cmd_show, "generate": cmd_generate}
    try:
        return commands[args.command](args)
    except (DatasetError, store.RegistryError, ValueError) as exc:  # one line, naming the file or tag
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
