"""A synthetic twin for the learning half (tests and benchmarks): the true CWSC is known.

Predictors are smooth random fields; the true CWSC depends on them nonlinearly and on
their neighbourhood (so patches carry information a single cell does not); labels are the
truth plus noise; a KGE field masks some cells; a sea (all nodata) borders the land.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cwsc.synthetic.fields import smooth_field


@dataclass
class Twin:
    predictors: np.ndarray  # (C, rows, cols) float32, NaN at sea
    names: list[str]
    truth: np.ndarray  # (rows, cols) mm, NaN at sea
    labels: np.ndarray  # (rows, cols) mm: truth + noise, NaN at sea and unlabelled cells
    kge: np.ndarray  # (rows, cols), NaN at sea


def _box_mean(a: np.ndarray, r: int) -> np.ndarray:
    pad = np.pad(a, r, mode="edge")
    c = pad.cumsum(0).cumsum(1)
    c = np.pad(c, ((1, 0), (1, 0)))
    k = 2 * r + 1
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def make_twin(
    shape: tuple[int, int] = (60, 60),
    channels: int = 13,
    seed: int = 0,
    noise: float = 0.08,
    labelled: float = 0.85,
) -> Twin:
    """The twin on ``shape`` cells: about ``labelled`` of the land cells pass the KGE mask."""
    rng = np.random.default_rng(seed)
    h, w = shape
    fields = [smooth_field(rng, shape, scale=rng.uniform(2.0, 6.0)) for _ in range(channels)]
    x = np.stack(fields)
    # Physical-looking units and offsets: standardisation must undo them.
    units = rng.uniform(0.1, 500.0, channels).astype(np.float32)
    offsets = rng.uniform(-100, 1000, channels).astype(np.float32)
    a, b, c = fields[0], fields[1 % channels], fields[2 % channels]
    context = _box_mean(fields[3 % channels], 2)  # a neighbourhood effect only patches see
    z = 1.2 * np.tanh(a) + 0.8 * b * c + 0.6 * context + 0.4 * np.sin(2 * fields[4 % channels])
    truth = (40.0 + 500.0 / (1.0 + np.exp(-z))).astype(np.float32)
    land = smooth_field(rng, shape, 8.0) > -0.9  # most of the grid; the rest is sea
    land[:, :2] = False
    predictors = x * units[:, None, None] + offsets[:, None, None]
    predictors[:, ~land] = np.nan
    truth[~land] = np.nan
    labels = truth * (1.0 + noise * rng.standard_normal(shape).astype(np.float32))
    kge = np.clip(0.6 + 0.4 * smooth_field(rng, shape, 3.0), -1, 1).astype(np.float32)
    cut = np.quantile(kge[land], 1.0 - labelled)
    kge = kge - cut  # the threshold 0 keeps about ``labelled`` of the land
    kge[~land] = np.nan
    labels[~land] = np.nan
    names = [f"x{i:02d}" for i in range(channels)]
    return Twin(
        predictors.astype(np.float32), names, truth, labels.astype(np.float32), kge.astype(np.float32)
    )


def write_twin(
    folder: str | Path, twin: Twin, crs: str = "EPSG:4326", res: float = 0.5, split_predictors: int = 2
) -> dict[str, object]:
    """Write the twin as GeoTIFFs: predictors over ``split_predictors`` files, labels, KGE, truth."""
    import rasterio
    from rasterio.transform import from_origin

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c, h, w = twin.predictors.shape
    transform = from_origin(10.0, 50.0, res, res)
    prof = dict(
        driver="GTiff", width=w, height=h, dtype="float32", crs=crs, transform=transform, nodata=-9999.0
    )

    def write(path: Path, data: np.ndarray, names: list[str]) -> Path:
        with rasterio.open(path, "w", count=data.shape[0], **prof) as dst:
            dst.write(np.where(np.isfinite(data), data, -9999.0).astype(np.float32))
            for i, n in enumerate(names, 1):
                dst.set_band_description(i, n)
        return path

    groups = np.array_split(np.arange(c), split_predictors)
    preds = [
        write(folder / f"predictors_{i}.tif", twin.predictors[g], [twin.names[j] for j in g])
        for i, g in enumerate(groups)
    ]
    return {
        "predictors": [str(p) for p in preds],
        "labels": str(write(folder / "labels.tif", twin.labels[None], ["CWSC (mm)"])),
        "kge": str(write(folder / "kge.tif", twin.kge[None], ["KGE"])),
        "truth": str(write(folder / "truth.tif", twin.truth[None], ["true CWSC (mm)"])),
    }
