"""cwsc.ml.network / training / metrics: tiny networks, few epochs, on the synthetic twin."""

import math

import numpy as np
import pytest
import torch  # noqa: E402 - after cwsc.ml, which sets the OpenMP wait policy

from cwsc.errors import InputFileError, ParameterError
from cwsc.ml.metrics import kge, regression_metrics
from cwsc.ml.network import ResNetConfig, build_network, count_parameters
from cwsc.ml.training import (
    MAX_GROWN_BATCH,
    MIN_STEPS_PER_EPOCH,
    RECIPES,
    TrainConfig,
    grown_recipe,
    one_cycle_schedule,
    train_from_arrays,
)
from cwsc.synthetic.twin import make_twin

TINY = dict(blocks=1, widths=(4, 8, 8), patch_size=5, threads=1)  # small work: one thread is fastest


@pytest.fixture(scope="module")
def twin():
    return make_twin((28, 28), channels=5, seed=3)


def test_seed_network_is_resnet32_with_about_1_49_million_parameters():
    cfg = ResNetConfig(in_channels=14)
    net = build_network(cfg)
    assert cfg.depth == 32
    assert 1.48e6 < count_parameters(net) < 1.50e6
    y = net(torch.zeros(3, 14, 11, 11))
    assert y.shape == (3,)
    assert bool(
        (build_network(ResNetConfig(14, 1, (4, 4, 4), sigmoid=True))(torch.randn(5, 14, 11, 11) * 100))
        .abs()
        .le(1)
        .all()
    )


def test_metrics_in_mm():
    obs = np.array([100.0, 200.0, 300.0, 400.0])
    m = regression_metrics(obs, obs + 10)
    assert m["bias"] == pytest.approx(10) and m["rmse"] == pytest.approx(10)
    assert m["mae"] == pytest.approx(10) and m["r2"] == pytest.approx(1 - 400 / 50000)
    assert kge(obs, obs) == pytest.approx(1.0)
    assert math.isnan(regression_metrics(np.array([]), np.array([]))["r2"])


def test_tiny_training_learns_the_twin_and_reports_sizes(twin):
    seen = []
    res = train_from_arrays(
        twin.predictors,
        twin.labels,
        twin.kge,
        TrainConfig(epochs=12, batch_size=32, device="cpu", **TINY),
        on_epoch=lambda k, rec, f: seen.append((k, rec["epoch"], f)),
    )
    s = res.sizes
    assert s["train_samples"] + s["val_samples"] + s["test_samples"] == int(
        (np.isfinite(twin.labels) & (twin.kge > 0)).sum()
    )
    assert s["test_samples"] == pytest.approx(
        0.3 * (s["train_samples"] + s["val_samples"] + s["test_samples"]), abs=1
    )
    assert s["masked_cells"] > 0
    assert res.metrics["test_r2"] > 0.3  # a 5x5 patch network beats the mean within 12 epochs
    assert {"test_r2", "test_rmse", "test_mae", "test_bias", "test_kge"} <= set(res.metrics)
    h = res.histories[0]
    assert h[-1]["val_r2"] is not None and h[-1]["train_loss"] < h[0]["train_loss"]
    assert seen[0][:2] == (0, 1) and 0 < seen[-1][2] <= 1.0
    assert len(res.test_obs) == len(res.test_pred) == s["test_samples"]


def test_same_seed_same_weights_on_cpu(twin):
    cfg = TrainConfig(epochs=2, batch_size=32, device="cpu", seed=7, **TINY)
    a = train_from_arrays(twin.predictors, twin.labels, twin.kge, cfg).members[0]
    b = train_from_arrays(twin.predictors, twin.labels, twin.kge, cfg).members[0]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = train_from_arrays(
        twin.predictors,
        twin.labels,
        twin.kge,
        TrainConfig(epochs=2, batch_size=32, device="cpu", seed=8, **TINY),
    ).members[0]
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_seed_recipe_uses_minmax_labels_sigmoid_and_stepped_lr(twin):
    res = train_from_arrays(
        twin.predictors, twin.labels, twin.kge, TrainConfig(recipe="seed", epochs=5, device="cpu", **TINY)
    )
    assert res.network.sigmoid and res.scaling.kind == "patch_minmax"
    assert res.sizes["val_samples"] == 0  # the seed watched its test split, as the original did
    lrs = [r["lr"] for r in res.histories[0]]
    assert lrs == [0.01, 0.003, 0.001, 0.0003, 0.0001]
    assert RECIPES["seed"].batch_size == 32 and RECIPES["seed"].epochs == 150
    lo = res.scaling.label_offset
    assert lo == pytest.approx(np.nanmin(twin.labels[twin.kge > 0]), rel=0.2)
    assert (res.test_pred >= lo - 1e-3).all()  # a sigmoid cannot leave the training range


def test_ensemble_members_differ_and_early_stopping_restores_best(twin):
    res = train_from_arrays(
        twin.predictors,
        twin.labels,
        twin.kge,
        TrainConfig(epochs=4, batch_size=32, ensemble=2, device="cpu", **TINY),
    )
    assert len(res.members) == 2 and len(res.histories) == 2
    a, b = res.members
    assert not torch.equal(a["stem.weight"], b["stem.weight"])
    assert res.epochs_run == 8


def test_no_valid_sample_after_masking(twin):
    with pytest.raises(InputFileError, match="no valid training sample"):
        train_from_arrays(
            twin.predictors, twin.labels, twin.kge, TrainConfig(device="cpu", **TINY), kge_threshold=5.0
        )


def test_fewer_samples_than_a_batch(twin):
    labels = np.full_like(twin.labels, np.nan)
    labels[10:14, 10:14] = 100.0
    with pytest.raises(InputFileError, match="fewer than one batch of 64"):
        train_from_arrays(twin.predictors, labels, None, TrainConfig(device="cpu", **TINY))


def test_bad_settings_are_bad_input(twin):
    for cfg, pat in [
        (TrainConfig(recipe="fancy"), "RECIPE"),
        (TrainConfig(epochs=0), "EPOCHS"),
        (TrainConfig(test_fraction=1.0), "TEST_FRACTION"),
        (TrainConfig(ensemble=0), "ENSEMBLE"),
        (TrainConfig(patch_size=10), "odd"),
    ]:
        with pytest.raises(ParameterError, match=pat):
            train_from_arrays(twin.predictors, twin.labels, None, cfg)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_bad_input(twin):
    with pytest.raises(ParameterError, match="no CUDA"):
        train_from_arrays(twin.predictors, twin.labels, None, TrainConfig(device="cuda", **TINY))


@pytest.mark.parametrize("total", [1, 2, 3, 4, 5, 7, 8, 40])
def test_one_cycle_schedule_runs_for_any_number_of_steps(total):
    """4 steps once crashed with ZeroDivisionError: the warm-up rounded to zero steps."""
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    sched = one_cycle_schedule(opt, 3e-3, total)
    rates = []
    for _ in range(total):
        opt.step()
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
    assert all(math.isfinite(r) and r > 0 for r in rates)
    assert max(rates) <= 3e-3 + 1e-12


@pytest.mark.parametrize("epochs", [1, 4, 7])
def test_training_runs_with_very_few_steps(twin, epochs):
    # 28 x 28 twin: a batch as large as the training split gives one step per epoch.
    cfg = TrainConfig(epochs=epochs, batch_size=256, device="cpu", seed=1, **TINY)
    res = train_from_arrays(twin.predictors, twin.labels, twin.kge, cfg)
    assert res.epochs_run >= 1 and math.isfinite(res.metrics["test_rmse"])


def test_the_trees_averaged_in_are_chosen_on_the_validation_cells(twin):
    from cwsc.ml.baseline import fit_best_baseline
    from cwsc.ml.metrics import r2_score
    from cwsc.ml.training import average_with_trees
    from cwsc.ml.trees import predict_trees

    res = train_from_arrays(
        twin.predictors, twin.labels, twin.kge, TrainConfig(epochs=2, batch_size=32, device="cpu", **TINY)
    )
    best = fit_best_baseline(twin.predictors, res.split, 0)
    shipped = average_with_trees(res, best)
    val = {name: fit.val_r2 for name, fit in best.fits.items()}
    assert shipped.name == max(val, key=val.get)  # by validation, whatever the test says
    fit = best.fits[shipped.name]
    np.testing.assert_array_equal(shipped.test_pred, 0.5 * (res.test_pred + fit.test_pred))
    assert shipped.metrics["test_r2"] == pytest.approx(r2_score(res.test_obs, shipped.test_pred))
    assert shipped.info["weight"] == 0.5 and shipped.info["val_r2"] == fit.val_r2
    # The exported trees give the fitted trees' test predictions.
    from cwsc.ml.baseline import BASELINES, baseline_features

    s = res.split.samples
    x = baseline_features(
        twin.predictors, s.rows[res.split.test], s.cols[res.split.test], BASELINES[shipped.name]
    )
    np.testing.assert_allclose(predict_trees(shipped.trees, x), fit.test_pred, rtol=1e-6)


def test_the_seed_recipe_has_no_validation_cells_to_choose_trees_on(twin):
    from cwsc.ml.baseline import fit_best_baseline
    from cwsc.ml.training import average_with_trees

    cfg = TrainConfig(recipe="seed", epochs=1, batch_size=32, device="cpu", **TINY)
    res = train_from_arrays(twin.predictors, twin.labels, twin.kge, cfg)
    assert len(res.split.val) == 0
    assert average_with_trees(res, fit_best_baseline(twin.predictors, res.split, 0)) is None


def test_the_default_batch_grows_with_many_training_cells_and_its_rate_with_it():
    d = RECIPES["default"]
    assert grown_recipe(d, 1_000) == d  # the demo region's few thousand cells: 64
    assert grown_recipe(d, 2 * 64 * MIN_STEPS_PER_EPOCH - 1) == d
    r128 = grown_recipe(d, 2 * 64 * MIN_STEPS_PER_EPOCH)
    assert r128.batch_size == 128 and r128.lr == pytest.approx(d.lr * math.sqrt(2))
    big = grown_recipe(d, 36_000)  # the real map's training cells
    assert big.batch_size == MAX_GROWN_BATCH == 256 and big.lr == pytest.approx(2 * d.lr)
    assert grown_recipe(d, 10**7).batch_size == MAX_GROWN_BATCH
    assert grown_recipe(RECIPES["seed"], 10**7) == RECIPES["seed"]  # the original's, as it was


def test_the_default_recipe_runs_every_epoch_and_keeps_the_best_weights_on_validation(twin):
    res = train_from_arrays(
        twin.predictors, twin.labels, twin.kge, TrainConfig(epochs=6, batch_size=32, device="cpu", **TINY)
    )
    hist = res.histories[0]
    assert [r["epoch"] for r in hist] == list(range(1, 7))  # no early stop
    best = min(hist, key=lambda r: r["val_loss"])
    # The weights kept are the best epoch's: their validation R2 is that epoch's.
    from cwsc.ml import patches as P
    from cwsc.ml.metrics import r2_score
    from cwsc.ml.network import build_network
    from cwsc.ml.training import predict_scaled, to_device

    s = res.split
    padded = P.pad_block(twin.predictors.copy(), res.scaling, 2)
    x = P.extract_patches(padded, s.samples.rows[s.val], s.samples.cols[s.val], 5, res.scaling.kind)
    net = build_network(res.network)
    net.load_state_dict(res.members[0])
    pv = res.scaling.unscale_labels(
        predict_scaled(net, to_device(x, torch.device("cpu")), torch.device("cpu"))
    )
    assert r2_score(s.samples.labels[s.val], pv) == pytest.approx(best["val_r2"], abs=1e-4)
    assert res.recipe.batch_size == 32  # given: not grown
