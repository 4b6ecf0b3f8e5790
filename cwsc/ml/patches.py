"""Training samples and patches from predictor rasters, a label raster and a KGE mask.

Arrays follow ``cwsc.io.rasters``: a stack of predictors is float32 ``(C, rows, cols)`` with NaN
for nodata. A patch batch is float32 ``(N, C + 1, p, p)``: the C scaled predictor channels
then one mask channel (1 where the neighbour is on the grid and all its predictors are
valid, 0 where it was filled), so the network can tell a filled value from a real one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cwsc.errors import InputFileError, ParameterError
from cwsc.io import rasters as io
from cwsc.io.inputs import open_input

# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------

log = logging.getLogger(__name__)


@dataclass
class PredictorStack:
    """Predictor channels on one grid: ``data`` float32 ``(C, rows, cols)``, NaN = nodata."""

    data: np.ndarray
    names: list[str]
    grid: io.Grid


def unique_names(names: Sequence[str], stems: Sequence[str]) -> list[str]:
    """Channel names, with the file name put in front of any name used twice."""
    out = list(names)
    for i, n in enumerate(names):
        if names.count(n) > 1:
            out[i] = f"{stems[i]}:{n}"
    seen: dict[str, int] = {}
    for i, n in enumerate(out):  # still equal (same file twice): number them
        if n in seen:
            seen[n] += 1
            out[i] = f"{n}#{seen[n]}"
        else:
            seen[n] = 1
    return out


def check_finite(band: np.ndarray, path: str, index: int, label: str = "PREDICTORS") -> None:
    """NaN is nodata; +-inf is a broken file: refuse it naming the file and band (1-based)."""
    if np.isinf(band).any():
        n = int(np.isinf(band).sum())
        raise InputFileError(
            f"{label}: '{path}' band {index + 1} holds {n} infinite value(s); "
            "set them to nodata (or NaN) or fix the file"
        )


#: A predictor raster with this many bands or more looks like a time series.
TIME_SERIES_BANDS = 24
#: Percentiles kept per channel in the model file (the training distribution).
PERCENTILES = (1, 50, 99)


def open_predictors(paths: Sequence[str], label: str = "PREDICTORS") -> list[io.Raster]:
    """Open the predictor rasters (every band is a channel); a raster of
    :data:`TIME_SERIES_BANDS` bands or more gets a warning."""
    if not paths:
        raise InputFileError(f"{label}: give at least one predictor raster")
    seen: dict[str, str] = {}
    for p in paths:
        key = os.path.realpath(p)
        if key in seen:
            raise ParameterError(
                f"{label}: '{p}' is given twice (as '{seen[key]}' too); each predictor is one "
                "channel of the network, so give each file once"
            )
        seen[key] = str(p)
    rasters = [open_input(p, f"{label} ({Path(p).name})") for p in paths]
    for r in rasters:
        if r.count >= TIME_SERIES_BANDS:
            log.warning(
                f"{label}: '{r.path}' has {r.count} bands, each a channel of the "
                "network: it looks like a time series (monthly forcing?), not a "
                "predictor; give mean or summary maps instead"
            )
    return rasters


def channel_statistics(stack: np.ndarray) -> list[dict[str, float]]:
    """Per channel of ``stack`` (C, rows, cols) the :data:`PERCENTILES` of its valid values,
    as ``[{"p1": .., "p50": .., "p99": ..}, ...]`` (the training distribution)."""
    out = []
    for band in stack:
        values = band[np.isfinite(band)]
        q = np.percentile(values, PERCENTILES) if values.size else [np.nan] * len(PERCENTILES)
        out.append({f"p{p}": float(v) for p, v in zip(PERCENTILES, q)})
    return out


def shifted_channels(values: np.ndarray, stats: Sequence[dict], names: Sequence[str]) -> list[str]:
    """Channels whose median lies far outside their training range, one line each.

    values: (C, N) valid predictor values of some cells. A channel is far outside when its
    median is more than the width of the training 1-99 % range (or 10 % of the training
    median, whichever is larger) below the 1st or above the 99th percentile: a swapped
    predictor or another unit, not a region a little drier or higher than the training one.
    """
    lines = []
    for c, st in enumerate(stats):
        lo, mid, hi = st.get("p1"), st.get("p50"), st.get("p99")
        if c >= values.shape[0] or None in (lo, mid, hi) or not np.isfinite([lo, mid, hi]).all():
            continue
        v = values[c][np.isfinite(values[c])]
        if v.size == 0:
            continue
        g_lo, g_mid, g_hi = np.percentile(v, PERCENTILES)
        width = max(hi - lo, 0.1 * abs(mid), 1e-9)
        if g_mid < lo - width or g_mid > hi + width:
            lines.append(
                f"channel {c + 1} ({names[c]}): median {g_mid:.4g} (1-99 %: {g_lo:.4g} to "
                f"{g_hi:.4g}) against {mid:.4g} ({lo:.4g} to {hi:.4g}) at training"
            )
    return lines


def channel_names(rasters: Sequence[io.Raster]) -> list[str]:
    """One name per band: its description, or the file name when it has none."""
    names, stems = [], []
    for r in rasters:
        names.extend(r.descriptions)
        stems.extend([Path(r.path).stem] * r.count)
    return unique_names(names, stems)


def read_predictors(paths: Sequence[str], grid: io.Grid, label: str = "PREDICTORS") -> PredictorStack:
    """Read every band of every predictor onto ``grid`` (warped with a warning when needed)."""
    rasters = open_predictors(paths, label)
    try:
        names = channel_names(rasters)
        layers = []
        for r in rasters:
            io.warn_if_resampled(r, grid, "bilinear")
            data = io.read_aligned(r, grid)
            for b in range(r.count):
                check_finite(data[b], r.path, b, label)
                if not np.isfinite(data[b]).any():
                    raise InputFileError(
                        f"{label}: '{r.path}' band {b + 1} holds no valid value on the "
                        "labels' grid (all nodata or NaN), so no cell could be used"
                    )
            layers.append(data)
    finally:
        for r in rasters:
            r.close()
    return PredictorStack(np.concatenate(layers, axis=0).astype(np.float32, copy=False), names, grid)


def read_single_band(path: str, label: str, grid: io.Grid | None = None) -> tuple[np.ndarray, io.Grid]:
    """Band 1 of ``path`` as float32 ``(rows, cols)`` (NaN = nodata), aligned to ``grid`` if given."""
    with open_input(path, label) as r:
        # A CWSC output (labels, masked labels, map) carries its spread or flags in the other
        # bands: nothing is lost by reading band 1 only. Other bands are worth a word.
        describing = ("spread", "uncertainty", "standard deviation", "range", "flags", " sc (mm)")
        dropped = [d for d in r.descriptions[1:] if not any(w in d.lower() for w in describing)]
        if dropped:
            log.warning(
                f"{label}: '{path}' has {r.count} bands; only band 1 is used "
                f"(not {', '.join(dropped[:3])}{' ...' if len(dropped) > 3 else ''})"
            )
        if grid is None:
            return r.read(bands=[0])[0], r.grid
        if io.warn_if_resampled(r, grid, "nearest"):
            return io.read_aligned(r, grid, resampling="nearest")[0], grid
        return io.read_aligned(r, grid)[0], grid  # the same grid, or a window of it


# ---------------------------------------------------------------------------------------
# Samples and split
# ---------------------------------------------------------------------------------------


@dataclass
class Samples:
    """The labelled cells: ``rows``/``cols`` int64 ``(N,)``, ``labels`` float32 ``(N,)`` in mm."""

    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    skipped: int  # labelled cells refused because their own predictors are nodata
    masked: int  # labelled cells whose KGE was not above the threshold (or missing)


def check_patch_size(patch_size: int, shape: tuple[int, int]) -> None:
    if patch_size < 1 or patch_size % 2 == 0:
        raise ParameterError(
            f"PATCH_SIZE: {patch_size} is not a positive odd number: the patch must "
            "be centred on its cell, so use an odd size such as 11"
        )
    if patch_size > min(shape):
        raise ParameterError(
            f"PATCH_SIZE: {patch_size} is larger than the grid ({shape[1]} x {shape[0]} "
            "cells); use a smaller patch"
        )


def select_samples(
    predictors: np.ndarray, labels: np.ndarray, kge: np.ndarray | None = None, threshold: float = 0.0
) -> Samples:
    """Cells with a valid label and KGE > ``threshold`` whose own predictors are all valid.

    predictors: ``(C, rows, cols)``; labels, kge: ``(rows, cols)``; NaN = nodata.
    """
    labelled = np.isfinite(labels)
    if kge is not None:
        keep = labelled & np.isfinite(kge) & (np.nan_to_num(kge, nan=-np.inf) > threshold)
    else:
        keep = labelled
    own_valid = np.isfinite(predictors).all(axis=0)
    rows, cols = np.nonzero(keep & own_valid)
    return Samples(
        rows.astype(np.int64),
        cols.astype(np.int64),
        labels[rows, cols].astype(np.float32),
        skipped=int((keep & ~own_valid).sum()),
        masked=int((labelled & ~keep).sum()),
    )


def split_samples(
    rows: np.ndarray,
    cols: np.ndarray,
    fraction: float,
    method: str = "random",
    block_size: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held-out) into the samples; ``fraction`` of them held out.

    ``random``: a seeded permutation. ``blocks``: square blocks of ``block_size`` cells a side
    (default: a tenth of the sampled extent, at least 4) are held out whole, in a seeded
    order, until ``fraction`` of the samples is reached, so no held-out cell has a training
    cell of the same block beside it.
    """
    n = len(rows)
    rng = np.random.default_rng(seed)
    n_out = int(round(fraction * n))
    if fraction <= 0 or n_out == 0:
        return np.arange(n), np.zeros(0, np.int64)
    if method == "random":
        perm = rng.permutation(n)
        return np.sort(perm[n_out:]), np.sort(perm[:n_out])
    if method != "blocks":
        raise ParameterError(f"SPLIT: unknown split '{method}' (use random or blocks)")
    if block_size is None:
        extent = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
        block_size = max(4, int(extent) // 10)
    if block_size < 1:
        raise ParameterError(f"BLOCK_SIZE: {block_size} must be at least 1 cell")
    bid = (rows // block_size) * (int(cols.max()) // block_size + 1) + cols // block_size
    blocks, inverse, counts = np.unique(bid, return_inverse=True, return_counts=True)
    order = rng.permutation(len(blocks))
    cum = np.cumsum(counts[order])
    # Take blocks until the held-out share is reached, never all of them.
    k = int(np.searchsorted(cum, n_out)) + 1
    k = min(k, len(blocks) - 1)
    if k < 1:
        raise ParameterError(
            f"BLOCK_SIZE: {block_size} cells make {len(blocks)} block(s): too few to "
            "hold some out; use smaller blocks"
        )
    held = np.zeros(len(blocks), bool)
    held[order[:k]] = True
    out = held[inverse]
    return np.nonzero(~out)[0], np.nonzero(out)[0]


@dataclass
class TrainingSplit:
    """The cells of one training run: int64 indices into ``samples`` for each part.

    ``train``: the cells a model is fitted on; ``val``: the cells its early stopping watches
    (empty when the recipe holds none); ``test``: the held-out cells of the test metrics.
    """

    samples: Samples
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def training_split(
    samples: Samples,
    test_fraction: float,
    method: str = "random",
    block_size: int | None = None,
    seed: int = 0,
    val_fraction: float = 0.0,
) -> TrainingSplit:
    """The split ``cwsc.ml.training.train_from_arrays`` trains and tests on (the one place it
    is made, so every model scored beside the network sees the same cells).

    ``test_fraction`` of the samples are held out for the test (:func:`split_samples` with
    ``seed``); then ``val_fraction`` of the rest for validation, by the same method with
    ``seed + 1``.
    """
    rows, cols = samples.rows, samples.cols
    train_idx, test_idx = split_samples(rows, cols, test_fraction, method, block_size, seed)
    val_idx = np.zeros(0, np.int64)
    if val_fraction > 0:
        sub_tr, sub_val = split_samples(
            rows[train_idx], cols[train_idx], val_fraction, method, block_size, seed + 1
        )
        train_idx, val_idx = train_idx[sub_tr], train_idx[sub_val]
    return TrainingSplit(samples, train_idx, val_idx, test_idx)


# ---------------------------------------------------------------------------------------
# Scaling and patches
# ---------------------------------------------------------------------------------------


@dataclass
class Scaling:
    """How predictors and labels are scaled; stored in the model file.

    ``kind="standard"``: channel c becomes ``(x - mean[c]) / std[c]`` and a missing
    neighbour becomes 0 (the training mean). ``kind="patch_minmax"`` (the seed's): a missing
    neighbour becomes ``mean[c]`` and each patch is min-max scaled over all its predictor
    channels together. Labels: ``scaled = (y - label_offset) / label_scale`` (standardised, or
    min-max to [0, 1] for the seed).
    """

    kind: str
    mean: np.ndarray  # (C,) training mean per channel, raw units
    std: np.ndarray  # (C,) training standard deviation per channel, raw units
    label_offset: float
    label_scale: float

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "label_offset": float(self.label_offset),
            "label_scale": float(self.label_scale),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scaling:
        return cls(
            d["kind"],
            np.asarray(d["mean"], np.float32),
            np.asarray(d["std"], np.float32),
            float(d["label_offset"]),
            float(d["label_scale"]),
        )

    def scale_labels(self, y: np.ndarray) -> np.ndarray:
        return ((y - self.label_offset) / self.label_scale).astype(np.float32)

    def unscale_labels(self, s: np.ndarray) -> np.ndarray:
        return (s * self.label_scale + self.label_offset).astype(np.float32)


def fit_scaling(
    predictors: np.ndarray, rows: np.ndarray, cols: np.ndarray, labels: np.ndarray, kind: str = "standard"
) -> Scaling:
    """Statistics of the training cells only (their own predictor values and labels)."""
    values = predictors[:, rows, cols].astype(np.float64)  # (C, N)
    mean = values.mean(axis=1)
    std = values.std(axis=1)
    std = np.where(std > 0, std, 1.0)  # a constant channel carries no information: keep it finite
    if kind == "standard":
        off, sc = float(labels.mean()), float(labels.std()) or 1.0
    elif kind == "patch_minmax":
        lo, hi = float(labels.min()), float(labels.max())
        off, sc = lo, (hi - lo) or 1.0
    else:
        raise ValueError(f"unknown scaling {kind}")
    return Scaling(kind, mean.astype(np.float32), std.astype(np.float32), off, sc)


def pad_block(
    block: np.ndarray, scaling: Scaling, half: int, top: int | None = None, bottom: int | None = None
) -> np.ndarray:
    """Scale and fill a predictor block and lay it out for patch windows.

    block: float32 ``(C, rows, cols)`` raw, NaN = nodata (modified: do not reuse).
    Returns float32 ``(rows + top + bottom, cols + 2 half, C + 1)``: the scaled channels
    with nodata and the border filled, and the mask channel last. ``top``/``bottom`` rows of
    fill (default ``half``) let a strip carry its real halo rows and pad only at the grid edge.
    """
    c, h, w = block.shape
    top = half if top is None else top
    bottom = half if bottom is None else bottom
    out = np.zeros((h + top + bottom, w + 2 * half, c + 1), np.float32)
    valid = np.isfinite(block).all(axis=0)
    inner = out[top : top + h, half : half + w]
    for i in range(c):  # one channel at a time keeps the temporaries one band large
        band = block[i]
        if scaling.kind == "standard":
            band -= scaling.mean[i]
            band /= scaling.std[i]
            band[~valid] = 0.0  # the training mean
        else:
            band[~valid] = scaling.mean[i]
        inner[..., i] = band
    inner[..., c] = valid
    if scaling.kind != "standard":
        out[..., :c][out[..., c] == 0] = scaling.mean  # border cells hold the mean too
    return out


def extract_patches(
    padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch: int, scaling_kind: str = "standard"
) -> np.ndarray:
    """Patches ``(N, C + 1, p, p)`` centred on ``(rows, cols)`` from a :func:`pad_block` output.

    ``rows``/``cols`` are the cells' positions in the unpadded block, so the window of a cell
    starts at the same index in the padded one. One gather on a strided view: no loop per cell.
    """
    view = sliding_window_view(padded, (patch, patch), axis=(0, 1))  # (H, W, C+1, p, p)
    out = np.ascontiguousarray(view[rows, cols])
    if scaling_kind == "patch_minmax":
        minmax_patches(out)
    return out


def minmax_patches(patches: np.ndarray) -> None:
    """The seed's scaling, in place: each patch's predictor channels to [0, 1] together."""
    x = patches[:, :-1]
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    x -= lo
    x /= np.where(hi > lo, hi - lo, 1.0)


def extract_patches_torch(padded, rows, cols, patch: int, scaling_kind: str = "standard"):
    """:func:`extract_patches` on torch tensors (on the GPU: the gather stays on the device).

    padded: ``(H + 2h, W + 2h, C + 1)`` tensor; rows, cols: int64 tensors on its device.
    Returns ``(N, C + 1, p, p)`` in channels-last memory.
    """
    import torch

    view = padded.unfold(0, patch, 1).unfold(1, patch, 1)  # (H, W, C+1, p, p), no copy
    out = view[rows, cols]
    if scaling_kind == "patch_minmax":
        x = out[:, :-1]
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        hi = x.amax(dim=(1, 2, 3), keepdim=True)
        out[:, :-1] = (x - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return out.contiguous(memory_format=torch.channels_last)
