"""cwsc.ml.modelfile and cwsc.ml.predict: model round trip, strip-wise GeoTIFF output."""

import pickle

import numpy as np
import pytest
import torch  # noqa: E402 - after cwsc.ml, which sets the OpenMP wait policy
from backend_testing import read_tif, write_tif

from cwsc.errors import InputFileError, ParameterError
from cwsc.io import rasters as io
from cwsc.ml import modelfile, predict
from cwsc.ml.modelfile import ModelBundle, grid_summary, load_model, save_model
from cwsc.ml.network import ResNetConfig, build_network
from cwsc.ml.patches import Scaling
from cwsc.ml.predict import match_channels, predict_raster
from cwsc.runtime.outputs import Outputs

T = (0.5, 0, 10.0, 0, -0.5, 50.0)


def _bundle(channels=3, members=1, patch=5, seed=0):
    torch.manual_seed(seed)
    cfg = ResNetConfig(channels + 1, 1, (4, 8, 8))
    states = []
    for _ in range(members):
        net = build_network(cfg)
        with torch.no_grad():  # non-trivial running statistics, so eval mode is exercised
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        states.append(net.state_dict())
    sc = Scaling(
        "standard", np.arange(channels, dtype=np.float32), np.ones(channels, np.float32), 200.0, 50.0
    )
    grid = io.Grid("", T, 30, 30)
    return ModelBundle(
        states,
        cfg,
        sc,
        [f"c{i}" for i in range(channels)],
        patch,
        grid_summary(grid),
        {"name": "default"},
        {"test_r2": 0.5},
    )


def _predictors(tmp_path, shape=(37, 23), channels=3, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 1, (channels, *shape)).astype(np.float32)
    data[:, :3, :4] = np.nan  # a sea corner
    data[1, 20, 10] = np.nan  # one cell with one channel missing: not predicted
    path = write_tif(
        tmp_path / "pred.tif", data, transform=T, descriptions=[f"c{i}" for i in range(channels)]
    )
    return [str(path)], data


def test_model_file_round_trip(tmp_path):
    b = _bundle(members=2)
    path = save_model(tmp_path / "m.pt", b)
    back = load_model(path)
    assert back.channels == b.channels and back.patch_size == 5
    assert back.network == b.network and back.scaling.label_scale == 50.0
    assert back.metrics == {"test_r2": 0.5} and back.versions["torch"] == torch.__version__
    assert len(back.members) == 2
    assert all(torch.equal(back.members[1][k], b.members[1][k]) for k in b.members[1])
    assert not list(tmp_path.glob("*.part*"))


def test_corrupt_or_foreign_model_files_are_bad_input(tmp_path):
    good = save_model(tmp_path / "m.pt", _bundle())
    raw = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")

    class Evil:  # a pickle that would run code if unpickled without weights_only
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"format": "cwsc-resnet", "evil": Evil()}, tmp_path / "evil.pt")  # a zip archive
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump(Evil(), fh)
    for name, pat in [
        ("cut.pt", "not a CWSC model|corrupted"),
        ("text.pt", "not a CWSC model"),
        ("other.pt", "not a CWSC model"),
        ("evil.pt", "corrupted or not a CWSC"),
        ("evil.pkl", "not a CWSC model"),
        ("missing.pt", "does not exist"),
    ]:
        with pytest.raises(InputFileError, match=pat):
            load_model(tmp_path / name)
    assert not (tmp_path / "pwned").exists()
    # The right mark but damaged metadata.
    payload = {"format": modelfile.FORMAT, "version": 1, "metadata": "{", "members": []}
    torch.save(payload, tmp_path / "damaged.pt")
    with pytest.raises(InputFileError, match="damaged"):
        load_model(tmp_path / "damaged.pt")


def test_channel_matching():
    assert match_channels(["a", "b"], ["a", "b"]) == [0, 1]
    assert match_channels(["a", "b"], ["b", "a"]) == [1, 0]
    assert match_channels(["a", "b"], ["x", "y"]) == [0, 1]  # same count: with a warning
    with pytest.raises(InputFileError, match=r"expects 2 channels but 3 were given \(not the model's: c\)"):
        match_channels(["a", "b"], ["a", "b", "c"])
    # One predictor left out of thirteen: named, not the 13 expected beside the 12 given.
    names = [f"p{i}" for i in range(13)]
    with pytest.raises(InputFileError, match=r"expects 13 channels but 12 were given \(missing: p7\)$"):
        match_channels(names, names[:7] + names[8:])


def test_prediction_is_strip_independent_and_writes_a_described_tiled_geotiff(tmp_path):
    paths, data = _predictors(tmp_path)
    b = _bundle()
    whole = predict_raster(b, paths, tmp_path / "whole.tif", device="cpu")
    # A tiny memory budget: one row per strip, so every strip carries a halo.
    strips = predict_raster(b, paths, tmp_path / "strips.tif", device="cpu", budget_bytes=1, batch_size=7)
    valid = np.isfinite(data).all(0)
    assert whole["cells_predicted"] == strips["cells_predicted"] == int(valid.sum())
    a, prof, desc = read_tif(tmp_path / "whole.tif")
    s, _, _ = read_tif(tmp_path / "strips.tif")
    np.testing.assert_allclose(a, s, rtol=1e-5, atol=1e-3)
    assert desc == ["CWSC (mm)"] and prof["nodata"] == -9999.0 and prof["compress"] == "deflate"
    assert prof["tiled"] and prof["count"] == 1
    np.testing.assert_array_equal(np.isfinite(a[0]), valid)
    assert not list(tmp_path.glob(".*part*"))


def test_ensemble_writes_std_as_band_two_or_a_second_raster(tmp_path):
    paths, data = _predictors(tmp_path)
    b = _bundle(members=3)
    predict_raster(b, paths, tmp_path / "two.tif", device="cpu")
    two, prof, desc = read_tif(tmp_path / "two.tif")
    assert desc == ["CWSC (mm)", "CWSC ensemble standard deviation (mm)"]
    assert np.nanmin(two[1]) >= 0 and np.nanmax(two[1]) > 0
    predict_raster(b, paths, tmp_path / "mean.tif", tmp_path / "std.tif", device="cpu")
    mean, _, d1 = read_tif(tmp_path / "mean.tif")
    std, _, d2 = read_tif(tmp_path / "std.tif")
    assert d1 == ["CWSC (mm)"] and d2 == ["CWSC ensemble standard deviation (mm)"]
    np.testing.assert_allclose(mean[0], two[0], rtol=1e-6)
    np.testing.assert_allclose(std[0], two[1], rtol=1e-5, atol=1e-4)


def _predict_as_the_command(bundle, paths, out):
    """predict_raster into the output's temporary, committed on success (as the command)."""
    with Outputs({"OUTPUT": out}) as outputs:
        predict_raster(bundle, paths, outputs.temporary("OUTPUT"), device="cpu")


def test_prediction_refuses_inf_and_wrong_channels_leaving_nothing(tmp_path):
    b = _bundle()
    import rasterio
    from affine import Affine

    data = np.ones((3, 12, 12), np.float32)
    data[2, 5, 5] = -np.inf
    with rasterio.open(
        tmp_path / "inf.tif",
        "w",
        driver="GTiff",
        width=12,
        height=12,
        count=3,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(*T),
    ) as dst:
        dst.write(data)
    with pytest.raises(InputFileError, match="inf.tif' band 3"):
        _predict_as_the_command(b, [str(tmp_path / "inf.tif")], tmp_path / "out.tif")
    two = write_tif(tmp_path / "two.tif", np.ones((2, 12, 12)), transform=T)
    with pytest.raises(InputFileError, match="expects 3 channels"):
        _predict_as_the_command(b, [str(two)], tmp_path / "out.tif")
    small = write_tif(tmp_path / "small.tif", np.ones((3, 4, 4)), transform=T)
    with pytest.raises(ParameterError, match="larger than the grid"):
        _predict_as_the_command(b, [str(small)], tmp_path / "out.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inf.tif", "small.tif", "two.tif"]


def test_folded_network_predicts_like_the_trained_one():
    b = _bundle()
    plain = b.networks("cpu", fuse=False)[0]
    fused = b.networks("cpu")[0]
    x = torch.randn(16, 4, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), plain(x), rtol=1e-4, atol=1e-4)


def test_a_model_with_damaged_weights_is_refused(tmp_path):
    import torch

    from cwsc.ml.modelfile import load_model, save_model

    bundle = _bundle()
    name = next(k for k, v in bundle.members[0].items() if v.is_floating_point() and v.numel() > 4)
    bundle.members[0][name] = torch.full_like(bundle.members[0][name], float("nan"))
    save_model(tmp_path / "damaged.pt", bundle)
    with pytest.raises(InputFileError, match="damaged.pt' is a damaged CWSC model file.*NaN"):
        load_model(tmp_path / "damaged.pt")


def test_the_label_route_never_maps_a_negative_cwsc(tmp_path):
    import rasterio
    import torch

    from cwsc.ml.predict import predict_raster

    bundle = _bundle()
    last = [k for k, v in bundle.members[0].items() if k.endswith("bias")][-1]
    bundle.members[0][last] = torch.full_like(bundle.members[0][last], -50.0)  # far below any label
    paths, _ = _predictors(tmp_path)
    metrics = predict_raster(bundle, paths, tmp_path / "map.tif", device="cpu")
    with rasterio.open(tmp_path / "map.tif") as r:
        values = r.read(1, masked=True).compressed()
    assert values.size and values.min() >= 0.0
    assert metrics["cells_bounded"] == metrics["cells_predicted"] > 0


def _biased(bundle, bias_mm):
    """The bundle with its output shifted by ``bias_mm`` (through the last layer's bias)."""
    last = [k for k, v in bundle.members[0].items() if k.endswith("bias")][-1]
    for state in bundle.members:
        state[last] = state[last] + bias_mm / bundle.scaling.label_scale
    return bundle


def test_the_map_stays_in_the_training_labels_range_and_flags_the_cells_it_bounds(tmp_path, caplog):
    paths, data = _predictors(tmp_path)
    flags_path = tmp_path / "flags.tif"
    # Within the range: nothing flagged.
    b = _bundle()
    b.training["label_range"] = [0.0, 1e6]
    m = predict_raster(b, paths, tmp_path / "within.tif", device="cpu", out_flags=flags_path)
    within, _, desc = read_tif(tmp_path / "within.tif")
    land = np.isfinite(within[0])
    assert desc == ["CWSC (mm)"] and m["cells_bounded"] == 0
    flags, _, flag_desc = read_tif(flags_path)
    assert flag_desc == [predict.BOUND_DESCRIPTION]
    np.testing.assert_array_equal(np.isfinite(flags[0]), land)
    assert (flags[0][land] == 0).all()
    # A narrow range around the outputs: cells above it lowered to its top (flag 2), cells
    # below raised to its bottom (flag 1), the others untouched (0); the map keeps one band.
    lo, hi = np.percentile(within[0][land], [20, 70])
    b.training["label_range"] = [float(lo), float(hi)]
    with caplog.at_level("WARNING", logger="cwsc.ml.predict"):
        m = predict_raster(b, paths, tmp_path / "bounded.tif", device="cpu", out_flags=tmp_path / "f2.tif")
    out, _, desc = read_tif(tmp_path / "bounded.tif")
    flags = read_tif(tmp_path / "f2.tif")[0][0]
    assert desc == ["CWSC (mm)"]
    expected = np.where(within[0][land] < lo, 1, np.where(within[0][land] > hi, 2, 0))
    np.testing.assert_array_equal(flags[land], expected)
    np.testing.assert_allclose(out[0][land], np.clip(within[0][land], lo, hi), rtol=1e-6)
    assert m["cells_bounded"] == int((expected > 0).sum()) > 0
    assert "outside the training labels' range" in caplog.text and "OUTPUT_FLAGS flags them" in caplog.text
    # Without OUTPUT_FLAGS the map is bounded the same; an ensemble keeps its spread as band 2.
    e = _bundle(members=2)
    e.training["label_range"] = [float(lo), float(hi)]
    m = predict_raster(e, paths, tmp_path / "ensemble.tif", device="cpu")
    ens = read_tif(tmp_path / "ensemble.tif")
    assert ens[2] == ["CWSC (mm)", "CWSC ensemble standard deviation (mm)"] and m["cells_bounded"] > 0
    assert np.nanmin(ens[0][0]) >= lo - 1e-3 and np.nanmax(ens[0][0]) <= hi + 1e-3
    # A model file written before the range was kept: bounded below by 0 mm only.
    old = _biased(_bundle(), 1e5)
    m = predict_raster(old, paths, tmp_path / "old.tif", device="cpu")
    assert m["cells_bounded"] == 0 and np.nanmin(read_tif(tmp_path / "old.tif")[0][0]) > 1e4


# -- a model that averages the network with gradient-boosted trees ------------------------


def _with_trees(bundle, data, sizes=(3, 11)):
    """``bundle`` carrying trees fitted on the valid cells of ``data`` (``(C, rows, cols)``,
    labels that depend on a cell and its 11 x 11 mean), and the scikit-learn model."""
    from dataclasses import replace

    from sklearn.ensemble import HistGradientBoostingRegressor

    from cwsc.ml.baseline import baseline_features
    from cwsc.ml.trees import export_trees

    rows, cols = np.nonzero(np.isfinite(data).all(axis=0))
    x = baseline_features(data, rows, cols, sizes)
    y = 250 + 40 * x[:, 0] + 80 * x[:, -1]
    model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(x, y)
    info = {"name": "trees with neighbourhood means", "neighbourhoods": list(sizes), "weight": 0.5}
    return replace(bundle, trees=export_trees(model), trees_info=info), model


def test_a_model_with_trees_round_trips_and_maps_the_mean_of_network_and_trees(tmp_path):
    from cwsc.ml.baseline import baseline_features

    paths, data = _predictors(tmp_path)
    network = _bundle()  # patch 5: the strips' halo of 2 rows is too short for the 11 x 11 means
    b, model = _with_trees(network, data)
    back = load_model(save_model(tmp_path / "m.pt", b))
    assert back.trees_info == b.trees_info and back.predictions == 2
    for k, v in b.trees.arrays().items():
        np.testing.assert_array_equal(back.trees.arrays()[k], v)
    predict_raster(network, paths, tmp_path / "net.tif", device="cpu")
    # One row per strip and 16 cells per batch: every strip reads its neighbourhoods' halo.
    out = predict_raster(
        back, paths, tmp_path / "cwsc.tif", tmp_path / "std.tif", device="cpu", budget_bytes=1, batch_size=16
    )
    predict_raster(back, paths, tmp_path / "whole.tif", device="cpu")  # one strip; one network: 1 band
    net = read_tif(tmp_path / "net.tif")[0][0]
    cwsc, prof, desc = read_tif(tmp_path / "cwsc.tif")
    std, _, std_desc = read_tif(tmp_path / "std.tif")
    whole, _, whole_desc = read_tif(tmp_path / "whole.tif")
    valid = np.isfinite(data).all(axis=0)
    rows, cols = np.nonzero(valid)
    # The trees see each cell's predictors and its means over the whole grid, as at training.
    trees = np.clip(model.predict(baseline_features(data, rows, cols, (3, 11))), 0, None)
    assert out["cells_predicted"] == len(rows)
    np.testing.assert_array_equal(np.isfinite(cwsc[0]), valid)
    np.testing.assert_allclose(cwsc[0][valid], 0.5 * net[valid] + 0.5 * trees, rtol=1e-5, atol=1e-3)
    # One member: the spread around the map is half the gap between network and trees.
    np.testing.assert_allclose(std[0][valid], np.abs(net[valid] - trees) / 2, rtol=1e-4, atol=1e-3)
    assert std_desc == [predict.STD_TREES_DESCRIPTION] and desc == ["CWSC (mm)"]
    assert whole_desc == ["CWSC (mm)"]  # the spread of one network and its trees only when asked
    np.testing.assert_allclose(whole[0], cwsc[0], rtol=1e-5, atol=1e-3)


def test_an_ensemble_with_trees_weights_the_spread_as_the_map(tmp_path):
    paths, data = _predictors(tmp_path)
    network = _bundle(members=3)
    b, _ = _with_trees(network, data, sizes=())
    predict_raster(network, paths, tmp_path / "net.tif", tmp_path / "net_std.tif", device="cpu")
    predict_raster(b, paths, tmp_path / "cwsc.tif", tmp_path / "std.tif", device="cpu")
    net, net_sd = read_tif(tmp_path / "net.tif")[0][0], read_tif(tmp_path / "net_std.tif")[0][0]
    cwsc, std = read_tif(tmp_path / "cwsc.tif")[0][0], read_tif(tmp_path / "std.tif")[0][0]
    valid = np.isfinite(cwsc)
    trees = 2 * cwsc[valid] - net[valid]
    # Members weighted 1/6 each, the trees 1/2: variance = half the members' variance around
    # the map plus half the trees' squared distance from it.
    var = 0.5 * (net_sd[valid] ** 2 + (net[valid] - cwsc[valid]) ** 2) + 0.5 * (trees - cwsc[valid]) ** 2
    np.testing.assert_allclose(std[valid], np.sqrt(var), rtol=1e-3, atol=1e-2)


def test_a_model_file_of_format_1_without_trees_still_predicts(tmp_path):
    import json

    from cwsc.io.jsonable import jsonable

    paths, _ = _predictors(tmp_path)
    b = _bundle(members=2)
    old = {  # the layout version 1 wrote: no trees
        "format": modelfile.FORMAT,
        "version": 1,
        "metadata": json.dumps(jsonable(b.metadata())),
        "members": b.members,
    }
    torch.save(old, tmp_path / "old.pt")
    back = load_model(tmp_path / "old.pt")
    assert back.trees is None and back.predictions == 2 and back.trees_weight == 0.0
    predict_raster(back, paths, tmp_path / "old.tif", device="cpu")
    predict_raster(b, paths, tmp_path / "new.tif", device="cpu")
    old_map, _, desc = read_tif(tmp_path / "old.tif")
    assert desc == ["CWSC (mm)", "CWSC ensemble standard deviation (mm)"]
    np.testing.assert_array_equal(old_map, read_tif(tmp_path / "new.tif")[0])


def test_a_model_file_with_damaged_trees_is_refused(tmp_path):
    paths, data = _predictors(tmp_path)
    b, _ = _with_trees(_bundle(), data)
    path = save_model(tmp_path / "m.pt", b)
    payload = torch.load(path, weights_only=True)
    payload["trees"]["left"] = payload["trees"]["left"] + 10**6
    torch.save(payload, tmp_path / "broken.pt")
    with pytest.raises(InputFileError, match="damaged CWSC model file.*children point outside"):
        load_model(tmp_path / "broken.pt")
    del payload["trees"]
    torch.save(payload, tmp_path / "half.pt")
    with pytest.raises(InputFileError, match="trees' arrays or their description is missing"):
        load_model(tmp_path / "half.pt")
