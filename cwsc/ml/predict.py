"""CWSC raster from a model file and predictor rasters, strip by strip.

Memory stays bounded whatever the raster size: the predictors are read in horizontal
strips (plus a halo of ``patch_size // 2`` rows, or of half the widest neighbourhood of a
model's trees when wider), patches are gathered batch by batch from the strip, and the output
GeoTIFF is written strip by strip into a temporary file that is renamed at the end.

A model that carries gradient-boosted trees (``train``'s default) maps the weighted mean of
the network (its members' mean) and the trees (:data:`cwsc.ml.trees.TREES_WEIGHT` each):
the trees take each cell's predictors as read, unscaled, and their neighbourhood means over the
predicted grid (:func:`cwsc.ml.baseline.baseline_features`), as at training.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from cwsc.errors import InputFileError, ParameterError
from cwsc.io import rasters as io
from cwsc.io.map_files import stage_path, to_cog
from cwsc.machine.devices import autocast, configure_threads
from cwsc.ml import patches as P
from cwsc.ml.modelfile import ModelBundle

log = logging.getLogger(__name__)


CWSC_DESCRIPTION = "CWSC (mm)"
STD_DESCRIPTION = "CWSC ensemble standard deviation (mm)"
#: The spread of a model with trees: around the map, each prediction weighted as in the map.
STD_TREES_DESCRIPTION = (
    "CWSC spread: standard deviation of the network members and the trees around the map, "
    "weighted as in the map (mm)"
)
BOUND_DESCRIPTION = (
    "CWSC bound flags (1: raised to the lowest training label, 2: lowered to the highest, 0: within)"
)
RAISED, LOWERED = 1.0, 2.0


def label_bounds(bundle: ModelBundle) -> tuple[float, float]:
    """The range (mm) a label-route model's map is bounded by: the training labels' lowest and
    highest value (``training["label_range"]``), never below 0 mm; a model file without it
    (written before it was kept) is bounded below by 0 mm only."""
    lo, hi = bundle.training.get("label_range") or (0.0, float("inf"))
    return max(float(lo), 0.0), float(hi)


def match_channels(expected: Sequence[str], given: Sequence[str], label: str = "PREDICTORS") -> list[int]:
    """Order of the given channels that feeds the model its expected channels.

    Same names in another order are reordered; the same count under other names is taken
    in order with a warning; anything else is a ``BadInput`` listing both.
    """
    expected, given = list(expected), list(given)
    if given == expected:
        return list(range(len(given)))
    if sorted(given) == sorted(expected) and len(set(given)) == len(given):
        log.warning(f"{label}: channels given in another order than at training; reordered")
        return [given.index(n) for n in expected]
    if len(given) == len(expected):
        log.warning(
            f"{label}: channel names differ from the model's (expected "
            f"{', '.join(expected)}; given {', '.join(given)}); used in the given order"
        )
        return list(range(len(given)))
    missing = [n for n in expected if n not in given]
    extra = [n for n in given if n not in expected]
    said = []
    if missing:
        said.append(f"missing: {', '.join(missing)}")
    if extra:
        said.append(f"not the model's: {', '.join(extra)}")
    raise InputFileError(
        f"{label}: the model expects {len(expected)} channels but {len(given)} were given"
        + (
            f" ({'; '.join(said)})"
            if said
            else f" (expected {', '.join(expected)}; given {', '.join(given)})"
        )
    )


class _Source:
    """One predictor raster read strip by strip on the output grid."""

    def __init__(self, raster: io.Raster, grid: io.Grid) -> None:
        self.raster = raster
        self.aligned = None
        if io.warn_if_resampled(raster, grid, "bilinear", " and held in memory"):
            self.aligned = io.read_aligned(raster, grid)
        elif not raster.grid.same_as(grid):  # a window (EXTENT) of its grid
            raster.window(grid)

    def read(self, rows: slice) -> np.ndarray:
        if self.aligned is not None:
            return self.aligned[:, rows].copy()
        return self.raster.read(rows)


def _strip_rows(
    grid: io.Grid, channels: int, block_rows: int, budget_bytes: int, tree_features: int = 0
) -> int:
    # The raw strip, its padded copy (C + 1 channels) and boolean masks: about 2.5x one copy;
    # with trees, their features (float32) and the float64 sums of a neighbourhood mean.
    per_row = int(grid.width * ((channels + 1) * 4 * 2.5 + tree_features * 4 + 3 * 8))
    rows = max(1, budget_bytes // max(per_row, 1))
    if rows >= block_rows:  # whole output tiles per strip: no tile is compressed twice
        rows -= rows % block_rows
    return min(rows, grid.height)


def predict_raster(
    bundle: ModelBundle,
    predictor_paths: Sequence[str],
    out: str | Path,
    out_uncertainty: str | Path | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    budget_bytes: int = 768 * 2**20,
    on_progress: Callable[[float], None] | None = None,
    reserve: Callable[[dict], None] | None = None,
    allow_shift: bool = False,
    extent: str | None = None,
    out_flags: str | Path | None = None,
) -> dict:
    """Predict CWSC (mm) on every cell whose predictors are valid; write Cloud-Optimised
    GeoTIFF(s) to ``out`` (and ``out_uncertainty``), in place (the command gives temporaries).

    With an ensemble the output holds the members' mean; their standard deviation goes to
    ``out_uncertainty`` or, when that is not given and the network has several members, to
    band 2 of ``out``. A model with trees
    (``bundle.trees``) maps ``(1 - w) * network mean + w * trees`` (``w``:
    ``bundle.trees_weight``, 0.5), and its spread is the standard deviation of the network
    members (each weighted ``(1 - w) / K``) and the trees (``w``) around that map: half the
    gap between network and trees for one member. A label-route model's
    members are bounded by the training labels' range (:func:`label_bounds`): a storage
    capacity below the lowest label (or 0 mm) or above the highest is not something the model
    learned; ``out_flags``, when given, says where a member was bounded (one band,
    :data:`BOUND_DESCRIPTION`: 1 raised, 2 lowered, 0 within; 0 everywhere for a model learned
    from runoff, whose sc comes from bounded parameters). ``reserve``, when
    given, is called with the estimated bytes of each output (``{"OUTPUT": n, ...}``) once the
    grid is known, before any prediction. ``extent`` ("xmin,xmax,ymin,ymax [CRS]") predicts
    the cells of that region only. A strip whose predictors lie far outside the
    training distribution of a channel (:func:`cwsc.ml.patches.shifted_channels`) is a
    ``BadInput`` unless ``allow_shift``. Returns ``{"cells_predicted": int, "cells_bounded":
    int, "seconds": float}``.
    """
    import rasterio

    from cwsc.machine.devices import resolve_device

    t0 = time.perf_counter()
    dev = resolve_device(device)
    configure_threads(dev)
    batch_size = batch_size or (16384 if dev.type == "cuda" else 4096)
    if batch_size < 1:
        raise ParameterError(f"BATCH_SIZE: {batch_size} must be at least 1")
    rasters = P.open_predictors(predictor_paths)
    with contextlib.ExitStack() as stack:
        for r in rasters:
            stack.callback(r.close)
        grid = rasters[0].grid
        if extent:
            grid = io.cut_grid(grid, io.parse_extent(extent, grid))
        order = match_channels(bundle.channels, P.channel_names(rasters))
        P.check_patch_size(bundle.patch_size, grid.shape)
        res = bundle.grid.get("resolution")
        if res and not np.allclose(res, grid.resolution, rtol=1e-3):
            log.warning(
                f"PREDICTORS: cells are {grid.resolution[0]:g} x {grid.resolution[1]:g} "
                f"but the model was trained on {res[0]:g} x {res[1]:g}; patches cover "
                "a different area than at training"
            )
        sources = [_Source(r, grid) for r in rasters]
        nets = bundle.networks(dev)
        k = len(nets)
        trees, w = bundle.trees, bundle.trees_weight
        sizes = bundle.tree_neighbourhoods
        # A spread exists with two predictions or more; it goes to band 2 of ``out`` only for
        # an ensemble of networks (a map's layout as before the trees), else only when asked.
        two_bands = k > 1 and out_uncertainty is None
        spread = bundle.predictions > 1 and (two_bands or out_uncertainty is not None)
        if bundle.position:
            from cwsc.ml.position import has_position, position_channels

            if not has_position(grid):
                raise InputFileError(
                    f"PREDICTORS: '{predictor_paths[0]}' has no CRS, but the model takes each "
                    "cell's latitude and longitude; give the predictors with their CRS (the "
                    "training's), e.g. assigned with gdal_edit.py -a_srs"
                )
        if trees is not None:
            from cwsc.ml.baseline import baseline_features
            from cwsc.ml.trees import predict_trees
        head = bundle.parameter_head()
        if head is not None:
            from cwsc.ml.physics import joint_cwsc
        # A model learned from runoff: band 1 the joint CWSC, then each model's sc.
        sc_bands = list(head.models) if head is not None else []
        margin = bundle.physics.get("kge_margin") if head is not None else None
        lo, hi = label_bounds(bundle)
        n_bands = (2 if two_bands else 1) + len(sc_bands)
        half = bundle.patch_size // 2
        # Rows read around a strip: the patches' halo, or the trees' widest neighbourhood's.
        halo = max([half] + [s // 2 for s in sizes])
        scaling = bundle.scaling
        # A bounded GDAL block cache: the default (5 % of RAM) would grow with the raster.
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=64))
        if reserve is not None:
            from cwsc.io.rasters import raster_bytes

            reserve(
                {
                    "OUTPUT": raster_bytes(grid.width, grid.height, n_bands, True),
                    "OUTPUT_UNCERTAINTY": raster_bytes(grid.width, grid.height, 1, True)
                    if out_uncertainty is not None
                    else 0,
                    "OUTPUT_FLAGS": raster_bytes(grid.width, grid.height, 1, True)
                    if out_flags is not None
                    else 0,
                }
            )
        # Written strip by strip to a staging GeoTIFF, then rewritten as a COG (its layout
        # needs the overviews before the data, which a strip-by-strip write cannot give).
        tmp = stage_path(out)
        profile = io.geotiff_profile(grid, n_bands)
        dst = stack.enter_context(rasterio.open(tmp, "w", **profile))
        dst_flags = None
        if out_flags is not None:
            tmp_flags = stage_path(out_flags)
            dst_flags = stack.enter_context(rasterio.open(tmp_flags, "w", **io.geotiff_profile(grid, 1)))
        dst_std = None
        if spread and out_uncertainty is not None:
            tmp_std = stage_path(out_uncertainty)
            dst_std = stack.enter_context(rasterio.open(tmp_std, "w", **io.geotiff_profile(grid, 1)))
        n_ch = len(bundle.channels)
        n_features = trees.n_features if trees is not None else 0
        step = _strip_rows(
            grid, bundle.network_channels, profile.get("blockysize", 1), budget_bytes, n_features
        )
        cells = finite = bounded = 0
        from rasterio.windows import Window

        for r0 in range(0, grid.height, step):
            r1 = min(grid.height, r0 + step)
            a, b = max(0, r0 - halo), min(grid.height, r1 + halo)
            block = np.concatenate([s.read(slice(a, b)) for s in sources], axis=0)[order]
            for i in range(n_ch):
                if np.isinf(block[i]).any():
                    src, band = _band_source(rasters, order[i])
                    P.check_finite(block[i], src, band)
            valid = np.isfinite(block[:, r0 - a : r1 - a]).all(axis=0)
            if bundle.channel_statistics and not allow_shift and valid.sum() >= SHIFT_MIN_CELLS:
                _check_shift(bundle, block[:, r0 - a : r1 - a][:, valid], rasters, order)
            rows, cols = np.nonzero(valid)
            if trees is not None:  # before pad_block, which scales the block in place
                # Neighbourhood means over the strip and its halo: those of the whole grid.
                features = baseline_features(block, rows + (r0 - a), cols, sizes)
            if bundle.position:  # after the predictors, as at training
                block = np.concatenate([block, position_channels(grid, slice(a, b))])
            # The network's patches need half a patch of rows around the strip.
            pa, pb = max(0, r0 - half), min(grid.height, r1 + half)
            padded = P.pad_block(
                block[:, pa - a : pb - a], scaling, half, top=half - (r0 - pa), bottom=half - (pb - r1)
            )
            del block
            mean = np.full((r1 - r0, grid.width), io.NODATA, np.float32)
            std = np.full_like(mean, io.NODATA) if spread else None
            scs = np.full((len(sc_bands),) + mean.shape, io.NODATA, np.float32)
            flags = np.full_like(mean, io.NODATA)
            on_gpu = dev.type == "cuda"
            if on_gpu:  # one upload per strip; patches are gathered on the device
                padded_t = torch.from_numpy(padded).to(dev)
                rows_t, cols_t = torch.from_numpy(rows).to(dev), torch.from_numpy(cols).to(dev)
            for i in range(0, len(rows), batch_size):
                rr, cc = rows[i : i + batch_size], cols[i : i + batch_size]
                if on_gpu:
                    xt = P.extract_patches_torch(
                        padded_t,
                        rows_t[i : i + batch_size],
                        cols_t[i : i + batch_size],
                        bundle.patch_size,
                        scaling.kind,
                    )
                else:
                    x = P.extract_patches(padded, rr, cc, bundle.patch_size, scaling.kind)
                    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
                with torch.inference_mode(), autocast(dev):
                    ys = torch.stack([net(xt).float() for net in nets])  # (K, n) scaled
                if head is not None:  # (K, n, outputs): parameters and fits -> sc in mm
                    joint = [joint_cwsc(head, y, margin) for y in ys.cpu().numpy()]
                    scs[:, rr, cc] = np.mean([s for _, s in joint], axis=0)
                    ys = np.stack([cw for cw, _ in joint])
                    flags[rr, cc] = 0.0
                else:
                    ys = ys.cpu().numpy() * scaling.label_scale + scaling.label_offset
                    # The network's linear output layer can leave the labels' range far from
                    # the training cells (even below 0 mm, which is not physical): bound it
                    # there and flag the cell.
                    below, above = (ys < lo).any(axis=0), (ys > hi).any(axis=0)
                    if trees is not None:  # bounded as the members are
                        t = predict_trees(trees, features[i : i + batch_size]).astype(np.float32)
                        below, above = below | (t < lo), above | (t > hi)
                        t = np.clip(t, lo, hi)
                    bounded += int((below | above).sum())
                    ys = np.clip(ys, lo, hi)
                    flags[rr, cc] = np.where(below, RAISED, np.where(above, LOWERED, 0.0))
                if trees is not None:
                    m = (1.0 - w) * ys.mean(axis=0) + w * t
                    mean[rr, cc] = m
                    if std is not None:
                        var = (1.0 - w) * ((ys - m) ** 2).mean(axis=0) + w * (t - m) ** 2
                        std[rr, cc] = np.sqrt(var)
                else:
                    mean[rr, cc] = ys.mean(axis=0)
                    if std is not None:
                        std[rr, cc] = ys.std(axis=0)
                finite += int(np.isfinite(mean[rr, cc]).sum())
            del padded
            if trees is not None:
                del features
            if on_gpu:
                del padded_t, rows_t, cols_t
            cells += len(rows)
            win = Window(0, r0, grid.width, r1 - r0)
            dst.write(mean, 1, window=win)
            if two_bands:
                dst.write(std, 2, window=win)
            elif dst_std is not None:
                dst_std.write(std, 1, window=win)
            for j in range(len(sc_bands)):
                dst.write(scs[j], (2 if two_bands else 1) + 1 + j, window=win)
            if dst_flags is not None:
                dst_flags.write(flags, 1, window=win)
            if on_progress is not None:
                on_progress(r1 / grid.height)
        dst.set_band_description(1, CWSC_DESCRIPTION)
        std_description = STD_TREES_DESCRIPTION if trees is not None else STD_DESCRIPTION
        if two_bands:
            dst.set_band_description(2, std_description)
        for j, m in enumerate(sc_bands):
            dst.set_band_description((2 if two_bands else 1) + 1 + j, f"{m} sc (mm)")
        dst.update_tags(
            model_recipe=bundle.recipe.get("name", ""),
            ensemble=str(k),
            **(
                {"trees": bundle.trees_info.get("name", ""), "trees_weight": f"{w:g}"}
                if trees is not None
                else {}
            ),
        )
        dst.units = ["mm"] * dst.count
        dst.close()
        to_cog(tmp, out)
        os.unlink(tmp)
        if dst_flags is not None:
            dst_flags.set_band_description(1, BOUND_DESCRIPTION)
            dst_flags.update_tags(label_range_mm=f"{lo:g},{hi:g}")
            dst_flags.close()
            to_cog(tmp_flags, out_flags)
            os.unlink(tmp_flags)
        if dst_std is not None:
            dst_std.set_band_description(1, std_description)
            dst_std.units = ["mm"]
            dst_std.close()
            to_cog(tmp_std, out_uncertainty)
            os.unlink(tmp_std)
    if cells and not finite:
        raise InputFileError(
            f"MODEL: the model gives no finite CWSC for any of the {cells:,} cells with predictors: "
            "its weights are damaged; train it again or use another copy"
        )
    if bounded:
        log.warning(
            f"{bounded:,} of {cells:,} cells were predicted outside the training labels' range "
            f"({lo:.4g} to {hi:.4g} mm; far from what the model was trained on) and set to its "
            "nearest end"
            + ("; OUTPUT_FLAGS flags them (1 raised, 2 lowered)" if out_flags is not None else "")
        )
    return {"cells_predicted": int(cells), "cells_bounded": bounded, "seconds": time.perf_counter() - t0}


#: Cells a strip needs before its distribution is compared with the training one.
SHIFT_MIN_CELLS = 100


def _check_shift(
    bundle: ModelBundle, values: np.ndarray, rasters: Sequence[io.Raster], order: Sequence[int]
) -> None:
    names = []
    for c, name in enumerate(bundle.channels):
        path, band = _band_source(rasters, order[c])
        names.append(f"'{name}', '{path}' band {band + 1}")
    lines = P.shifted_channels(values, bundle.channel_statistics, names)
    if lines:
        raise InputFileError(
            "PREDICTORS: " + "; ".join(lines) + ". These lie far outside what the "
            "model was trained on: a predictor given in another place of the list, "
            "another unit, or another product. Check the order and units of "
            "PREDICTORS, or give ALLOW_SHIFT (--allow-shift) if the region really "
            "is that different"
        )


def _band_source(rasters: Sequence[io.Raster], channel: int) -> tuple[str, int]:
    for r in rasters:
        if channel < r.count:
            return r.path, channel
        channel -= r.count
    return rasters[-1].path, 0
