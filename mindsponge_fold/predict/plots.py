"""PNG plots of a prediction (matplotlib, Agg backend): per-residue pLDDT of every model, and per model the
predicted aligned error matrix and the distogram contact map P(d(CB_i, CB_j) < 8 A)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mindsponge_fold.common.fileio import atomic_path

CONTACT_CUTOFF = 8.0   # Angstrom (CASP contact definition on CB, CA for glycine: the distogram's atoms)


def contact_probability(logits, bin_edges, cutoff: float = CONTACT_CUTOFF) -> np.ndarray:
    """[N, N] probability that the distogram distance is below ``cutoff``: the mass of the bins whose upper edge is
    at most ``cutoff`` (bin k covers [edge_{k-1}, edge_k); the last bin is open-ended)."""
    logits = np.asarray(logits, np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    below = int(np.sum(np.asarray(bin_edges) <= cutoff))   # bins 0..below-1 end at or before the cutoff
    return probs[..., :below].sum(-1)


def _figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def plot_plddt(path, plddts: dict, title: str) -> None:
    """One line per model: pLDDT against residue number, with AlphaFold's confidence bands."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 4))
    for lo, hi, colour in ((0, 50, "#ff7d45"), (50, 70, "#ffdb13"), (70, 90, "#65cbf3"), (90, 100, "#0053d6")):
        ax.axhspan(lo, hi, color=colour, alpha=0.12, lw=0)
    for name, values in plddts.items():
        ax.plot(np.arange(1, len(values) + 1), values, lw=1.2, label=f"{name} ({np.mean(values):.1f})")
    n = max(len(v) for v in plddts.values())
    ax.set(xlabel="residue", ylabel="pLDDT", xlim=(0.5, n + 0.5), ylim=(0, 100),
           title=f"{title}: predicted lDDT per residue")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _matrix(path, matrix, title: str, label: str, cmap: str, vmax: float) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    n = matrix.shape[0]
    image = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=vmax, extent=(0.5, n + 0.5, n + 0.5, 0.5))
    fig.colorbar(image, ax=ax, label=label)
    ax.set(title=title, xlabel="residue", ylabel="residue")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_pae(path, pae, max_pae: float, title: str) -> None:
    """Predicted aligned error (row = aligned residue, column = scored residue), 0 .. max PAE Angstrom."""
    _matrix(path, np.asarray(pae), f"{title}: predicted aligned error", "expected error (A)", "Greens_r",
            float(max_pae))


def plot_contacts(path, distogram_logits, bin_edges, title: str) -> None:
    """Contact probability map from the distogram head."""
    _matrix(path, contact_probability(distogram_logits, bin_edges), f"{title}: distogram contacts",
            f"P(distance < {CONTACT_CUTOFF:g} A)", "Greys", 1.0)


def write_plots(directory, target: str, results: dict) -> list:
    """plddt.png for all models; pae_<model>.png (pTM models) and contacts_<model>.png per model. Returns paths."""
    directory = Path(directory)
    paths = [directory / "plddt.png"]
    plot_plddt(paths[0], {n: r["confidence/plddt"] for n, r in results.items()}, target)
    for name, r in results.items():
        if "confidence/predicted_aligned_error" in r:
            paths.append(directory / f"pae_{name}.png")
            plot_pae(paths[-1], r["confidence/predicted_aligned_error"], r["confidence/max_predicted_aligned_error"],
                     f"{target} {name}")
        paths.append(directory / f"contacts_{name}.png")
        plot_contacts(paths[-1], r["distogram/logits"], r["distogram/bin_edges"], f"{target} {name}")
    return paths
