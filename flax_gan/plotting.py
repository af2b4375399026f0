"""Training curves from a workdir's metrics.jsonl, drawn to a PNG with matplotlib."""

from __future__ import annotations

import json
import os

from flax_gan.config import ConfigError
from flax_gan.files import atomic_path

PANELS = (
    ("losses", ("d_loss", "g_loss")),
    ("D's mean output", ("d_real", "d_fake")),
    ("speed (steps/s)", ("steps_per_sec",)),
)


def read_metrics(workdir: str) -> list[dict]:
    """The rows of `<workdir>/metrics.jsonl` (a line cut short by a crash is skipped)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise ConfigError(f"no metrics.jsonl in {workdir!r}; train first: python scripts/train.py --steps N --workdir {workdir}")
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    if not rows:
        raise ConfigError(f"{path} holds no metrics yet")
    return rows


def plot_metrics(workdir: str, out: str) -> list[str]:
    """Draws every known curve in `<workdir>/metrics.jsonl` to the PNG `out`; returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(workdir)
    panels = [(title, [n for n in names if any(n in r for r in rows)]) for title, names in PANELS]
    numeric = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    extra = sorted(numeric - {"step"} - {n for _, names in PANELS for n in names})
    panels = [p for p in panels if p[1]] + [(name, [name]) for name in extra]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True, squeeze=False)
    drawn = []
    for ax, (title, names) in zip(axes[:, 0], panels):
        for name in names:
            points = [(r["step"], r[name]) for r in rows if isinstance(r.get(name), (int, float))]
            if points:
                ax.plot(*zip(*points), label=name)
                drawn.append(name)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(os.path.basename(os.path.abspath(workdir)))
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return drawn
