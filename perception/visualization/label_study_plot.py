"""The label-efficiency plot: a metric against the label fraction, the
pretrained detector against scratch, each seed a dot and the mean with its
standard deviation as an error bar; the ablation rows (linear probe, LoRA,
layer decay off) as single markers at their fraction."""
from __future__ import annotations

from typing import Sequence

STYLES = {'scratch': dict(color='#444444', marker='s'),
          'pretrained': dict(color='#d62728', marker='o'),
          'linear-probe': dict(color='#1f77b4', marker='v'),
          'lora': dict(color='#2ca02c', marker='^'),
          'no-layer-decay': dict(color='#9467bd', marker='D')}


def plot_label_efficiency(cells: Sequence, metric: str, metric_name: str,
                          out: str, *, fraction_kind: str = 'images',
                          all_count: int | None = None,
                          title: str = '') -> str:
    """Write the plot as PNG.

    Args:
        cells: :class:`~perception.engine.label_study_report.Cell` objects
            (``row``, ``fraction``, ``values[metric]`` per seed).
        metric, metric_name: the metric key and its axis label.
        out: the PNG path.
        fraction_kind: ``'images'`` (x: % of labelled images, log scale) or
            ``'patients'`` (x: patients; ``'all'`` drawn at ``all_count``, or
            one step right of the largest count).
    Returns:
        ``out``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    counts = [c.fraction for c in cells if c.fraction != 'all']
    all_x = all_count or (max(counts, default=1) * 2 if counts else 8)

    def x_of(fraction) -> float:
        if fraction_kind == 'images':
            return float(fraction) * 100.0
        return float(all_x if fraction == 'all' else fraction)

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for row, style in STYLES.items():
        mine = sorted((c for c in cells if c.row == row
                       and c.values.get(metric)), key=lambda c: x_of(c.fraction))
        if not mine:
            continue
        xs = [x_of(c.fraction) for c in mine]
        means = [c.mean(metric) for c in mine]
        stds = [c.std(metric) for c in mine]
        line = '-' if row in ('scratch', 'pretrained') else 'none'
        ax.errorbar(xs, means, yerr=stds, linestyle=line, capsize=4,
                    label=row, markersize=7, **style)
        for c, x in zip(mine, xs):
            seeds = c.values[metric]
            if len(seeds) > 1:
                ax.scatter([x] * len(seeds), seeds, s=12, alpha=0.5,
                           color=style['color'])
    if fraction_kind == 'images':
        ax.set_xscale('log')
        ticks = sorted({x_of(c.fraction) for c in cells})
        ax.set_xticks(ticks)
        ax.set_xticks([], minor=True)
        ax.set_xticklabels([f'{t:g}%' for t in ticks])
        ax.set_xlabel('labelled images')
    else:
        ticks = sorted({x_of(c.fraction) for c in cells})
        ax.set_xticks(ticks)
        ax.set_xticklabels(['all' if t == all_x and any(
            c.fraction == 'all' for c in cells) else f'{t:g}' for t in ticks])
        ax.set_xlabel('labelled patients')
    ax.set_ylabel(metric_name)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f'{metric_name} vs labels', fontsize=10)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
