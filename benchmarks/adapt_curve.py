"""How many corrections does a city take? `models adapt` from a model that never saw the city, as a curve.

The simulation of issue 24: a bureau starts from model v1 (never trained on a Chinese street), its analysts'
corrections are the Chinese set's own labels (garbage, bins, overflowing bins) on N photos of that set's
*train* split, and the result is judged on the Chinese *test* split (no photo of it is ever a correction)
beside every other source's test split. Nested draws: the 50 photos are among the 100, the 100 among the 300.

    python -m benchmarks.adapt_curve --start work-data/v1.pt --base-data work-data/datasets/v1/data.yaml \
        --split-lists work-data/datasets/streetwatch-v2c --n 50:10 --n 100:15 --n 300:30 --out work-data/adapt-curve

`--n N:MINUTES` per point; `--wise ALPHA` (repeatable) also judges each point's weights blended back towards
its start (`models interpolate`), the same way, with no more training. v1 is `git show f808a88:models/streetwatch-default/streetwatch-default.pt`; the v1
base dataset is `streetwatch dataset build datasets/default.yaml`; the split lists come from
`dataset build datasets/v2.yaml` (its `garbage_cn_streets-{train,test}.txt` and per-source data files).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import time
from pathlib import Path

from streetwatch.training.adapt import CITY, AdaptSettings
from streetwatch.training.adapt_run import adapt, aligned, judge_against, judge_sets
from streetwatch.training.evaluate import evaluate
from streetwatch.training.wise import interpolate

CITY_SOURCE = "garbage_cn_streets"
CLASSES = ["garbage", "overflowing_bin", "garbage_bin"]


def city_photos(split_lists: Path, seed: int) -> list[Path]:
    """The Chinese set's train-split photos (the v2 dataset's links resolved to the shared files), shuffled."""
    links = (split_lists / f"{CITY_SOURCE}-train.txt").read_text().split()
    photos = sorted({Path(p).resolve() for p in links})
    random.Random(seed).shuffle(photos)
    return photos


def write_city(photos: list[Path], out: Path) -> Path:
    """A --labelled folder as a bureau would hand it over: the photos, their labels, a data.yaml."""
    for sub in ("images/train", "labels/train"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for photo in photos:
        link = out / "images" / "train" / photo.name
        if not link.exists():
            link.symlink_to(photo)
        label = photo.parent.parent / "labels" / f"{photo.stem}.txt"
        (out / "labels" / "train" / f"{photo.stem}.txt").write_text(label.read_text() if label.is_file() else "")
    (out / "data.yaml").write_text("train: images/train\nval: images/train\n"
                                   "names: {0: garbage, 1: garbage_bin, 2: overflow}\n")
    return out


def _epoch_line(n: int):
    def line(epoch, total, metrics):
        print(f"  n={n} epoch {epoch}/{total} city held-back mAP50 {metrics.get('metrics/mAP50(B)', 0):.3f}", flush=True)
    return line


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def city_test(model: Path, split_lists: Path, imgsz: int) -> dict[str, float]:
    data = split_lists / f"data-{CITY_SOURCE}.yaml"
    result = evaluate(aligned(model, data, model.parent), data, imgsz, split="test")
    return {c: result["classes"][c]["mAP50"] for c in CLASSES if c in result["classes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=Path, required=True)
    parser.add_argument("--base-data", type=Path, required=True)
    parser.add_argument("--split-lists", type=Path, required=True)
    parser.add_argument("--full-model", type=Path, default=Path("models/streetwatch-default/streetwatch-default.pt"))
    parser.add_argument("--n", action="append", required=True, help="N:MINUTES")
    parser.add_argument("--out", type=Path, default=Path("work-data/adapt-curve"))
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, help="write the curve as a PNG here")
    parser.add_argument("--replay-ratio", type=float, default=1.0, help="base images per city photo (models adapt's)")
    parser.add_argument("--replay-focus", type=float, default=0.0,
                        help="share of the replay showing the classes the city teaches (models adapt's)")
    parser.add_argument("--freeze", type=int, help="modules kept as they are (10: the backbone)")
    # the curve's own defaults are those of the rounds that measured it (models adapt's are the recipe it found)
    parser.add_argument("--lr0", type=float, default=0.0005, help="AdamW's initial rate")
    parser.add_argument("--wise", type=float, action="append", default=[],
                        help="also judge WiSE-FT blends of each point with its start at this alpha (repeatable)")
    parser.add_argument("--tag", default="", help="a variant's name: its points are kept apart (N-TAG)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "curve.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if "full" not in results:
        results["full"] = {"model": str(args.full_model), "city_test": city_test(args.full_model, args.split_lists,
                                                                                    args.imgsz)}
        results["start"] = {"model": str(args.start), "city_test": city_test(args.start, args.split_lists, args.imgsz)}
    photos = city_photos(args.split_lists, args.seed)
    for point in args.n:
        n, minutes = (int(x) if i == 0 else float(x) for i, x in enumerate(point.split(":")))
        key = point_key(n, args.tag)
        if key in results and results[key].get("done"):
            continue
        city = write_city(photos[:n], args.out / f"city-{n}")
        settings = AdaptSettings(city=city, base_data=args.base_data, model=args.start, out=args.out / f"adapt-{key}",
                                 minutes=minutes, class_map={"overflow": "overflowing_bin"}, imgsz=args.imgsz,
                                 replay_ratio=args.replay_ratio, replay_focus=args.replay_focus, freeze=args.freeze,
                                 lr0=args.lr0, wise=1.0)  # blends are judged apart (--wise)
        wall0, cpu0 = time.monotonic(), cpu_seconds()
        report = adapt(settings, on_epoch=_epoch_line(n))
        results[key] = {"n": n, "budget_min": minutes, "train_min": report["minutes_spent"],
                        "wall_min_total": round((time.monotonic() - wall0) / 60, 1),
                        "cpu_min_total": round((cpu_seconds() - cpu0) / 60, 1),
                        "replay_ratio": args.replay_ratio, "replay_focus": args.replay_focus,
                        "freeze": args.freeze, "lr0": args.lr0,
                        "city_test": city_test(Path(report["candidate"]), args.split_lists, args.imgsz),
                        "before": report["before"], "after": report["after"], "boxes": report.get("boxes"),
                        "passes": report["passes"],
                        "reasons": report["reasons"], "load1": os.getloadavg()[0], "done": True}
        results_path.write_text(json.dumps(results, indent=2))
        print(json.dumps(results[key], indent=1), flush=True)
    for point in args.n:
        key = point_key(int(point.split(":")[0]), args.tag)
        for alpha in args.wise:
            if f"{key}-wise{alpha}" not in results:
                results[f"{key}-wise{alpha}"] = judge_blend(results[key], args.out / f"adapt-{key}", alpha, args)
                results_path.write_text(json.dumps(results, indent=2))
    print_table(results)
    if args.plot:
        plot(results, args.plot)


def point_key(n: int, tag: str) -> str:
    """A point's key in curve.json: a variant's points are kept apart by its tag (N-TAG)."""
    return f"{n}-{tag}" if tag else f"{n}"


def judge_blend(point: dict, run: Path, alpha: float, args) -> dict:
    """A point's weights blended back towards its start (`models interpolate`), judged as the point was."""
    blend = interpolate(run / "run" / "weights" / "last.pt", run / "start.pt", alpha, run / f"wise-{alpha}.pt")
    judged = judge_against(blend, point["before"], judge_sets(run / "data" / "data.yaml", args.base_data),
                           list(point["after"][CITY]), args.imgsz, run / "judged.json")
    return {**point, "wise_alpha": alpha, "city_test": city_test(blend, args.split_lists, args.imgsz),
            "after": judged["after"], "passes": judged["passes"], "reasons": judged["reasons"],
            "load1": os.getloadavg()[0]}


def plot(results: dict, out: Path) -> None:
    """Corrected photos -> the city's mAP50 per class, the full-data model's figures as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted((v for k, v in results.items() if k.isdigit()), key=lambda v: v["n"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for colour, cls in zip(("tab:brown", "tab:red", "tab:green"), CLASSES):
        xs = [0] + [p["n"] for p in points]
        ys = [results["start"]["city_test"].get(cls, 0.0)] + [p["city_test"].get(cls, 0.0) for p in points]
        ax.plot(xs, ys, "o-", color=colour, label=f"{cls} (adapted)")
        ax.axhline(results["full"]["city_test"][cls], color=colour, ls="--", lw=1, label=f"{cls} (full-data model)")
    for p in points:
        ax.annotate(f"{p['train_min']:.0f} min", (p["n"], p["city_test"].get("garbage", 0)), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    ax.set_xlabel("corrected photos of the city")
    ax.set_ylabel("mAP50 on the city's test split")
    ax.set_ylim(0, 1)
    ax.set_title("models adapt from v1 (never saw the city), Chinese streets", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)


def print_table(results: dict) -> None:
    full = results["full"]["city_test"]
    print(f"full-data model {results['full']['model']}: " + ", ".join(f"{c} {v:.3f}" for c, v in full.items()))
    print(f"start {results['start']['model']}: " + ", ".join(f"{c} {v:.3f}" for c, v in
                                                             results["start"]["city_test"].items()))
    print(f"{'point':>10} {'budget':>6} {'train min':>9} {'CPU min':>7} " + " ".join(f"{c:>16}" for c in CLASSES)
          + "  garbage/full  worst other-source change")
    for key, r in sorted(((k, v) for k, v in results.items() if "n" in v), key=lambda kv: (kv[1]["n"], kv[0])):
        worst = min(((f"{label} {c}", r["after"][label].get(c, 0) - v) for label, cls in r["before"].items()
                     if label != "city" for c, v in cls.items()), key=lambda x: x[1], default=("-", 0.0))
        print(f"{key:>10} {r['budget_min']:>6} {r['train_min']:>9} {r['cpu_min_total']:>7} "
              + " ".join(f"{r['city_test'].get(c, 0):>16.3f}" for c in CLASSES)
              + f"  {r['city_test'].get('garbage', 0) / full['garbage']:>12.0%}  {worst[0]} {worst[1]:+.3f}")


if __name__ == "__main__":
    main()
