"""The city against forgetting: every 300-photo adaptation variant as one point (docs/adapt_tradeoff.png).

x: Montevideo garbage's change on its test split (the one well-measured class of another source that dropped);
y: the city's garbage as a share of the full-data model's. The target corner (issue 24 item 4) is y >= 80 %
with x >= -0.02. Points measured in earlier rounds on other hosts come from docs/training.md's tables (their
curve.json stayed on those machines); the points of `--curve` (adapt_curve's curve.json) are read from it.

    python -m benchmarks.adapt_tradeoff --curve work-data/adapt-curve/curve.json --out docs/adapt_tradeoff.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# (label, city garbage / full-data model, Montevideo garbage change): docs/training.md, rounds 10-13
EARLIER = [
    ("all layers, even replay 1, 45 min", 0.82, -0.059),
    ("frozen, even replay 2, lr0 0.0005, 50 min", 0.71, 0.002),
    ("frozen, even replay 2, lr0 0.001", 0.78, -0.036),
    ("  WiSE 0.95", 0.76, -0.015),
    ("  WiSE 0.9", 0.74, -0.009),
    ("  WiSE 0.8", 0.68, 0.001),
    ("  WiSE 0.6", 0.60, 0.026),
    # round 13: the focused replay (2.5 base photos per city photo, 70 % of them showing a taught class)
    ("frozen, focused replay, lr0 0.001", 0.76, 0.004),
    ("all layers, focused replay", 0.83, -0.040),
    ("  focused WiSE 0.95", 0.84, -0.040),
    ("  focused WiSE 0.9", 0.83, -0.031),
    ("  focused WiSE 0.8", 0.77, -0.023),
    ("  focused WiSE 0.7", 0.72, -0.019),
]
MONTEVIDEO = "garbage_montevideo"


def curve_points(curve: dict) -> list[tuple[str, float, float]]:
    """The 300-photo points of a curve.json: (its key, garbage share, Montevideo garbage change)."""
    full = curve["full"]["city_test"]["garbage"]
    return [(key, r["city_test"]["garbage"] / full, r["after"][MONTEVIDEO]["garbage"] - r["before"][MONTEVIDEO]["garbage"])
            for key, r in curve.items() if r.get("n") == 300 and r.get("done")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--curve", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/adapt_tradeoff.png"))
    args = parser.parse_args()
    new = curve_points(json.loads(args.curve.read_text()))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.6), dpi=100)
    ax.axvspan(-0.02, 0.05, ymin=(0.80 - 0.55) / 0.35, color="tab:green", alpha=0.12, label="target")
    for points, colour, marker in ((EARLIER, "tab:grey", "o"), (new, "tab:blue", "s")):
        for label, share, change in points:
            ax.plot(change, share, marker, color=colour)
            ax.annotate(label.strip(), (change, share), textcoords="offset points", xytext=(5, 3), fontsize=7)
    for line in new:
        print(f"{line[0]:>28}  garbage/full {line[1]:.0%}  Montevideo garbage {line[2]:+.3f}")
    ax.axvline(-0.02, color="tab:green", lw=0.8, ls="--")
    ax.axhline(0.80, color="tab:green", lw=0.8, ls="--")
    ax.set_xlim(-0.08, 0.05)
    ax.set_ylim(0.55, 0.90)
    ax.set_xlabel("Montevideo garbage, change in mAP50 (test split, 115 boxes)")
    ax.set_ylabel("city garbage / full-data model (Chinese test split)")
    ax.set_title("300 corrected photos, <= 60 min on 2 cores: grey earlier rounds, blue this curve.json", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out)


if __name__ == "__main__":
    main()
