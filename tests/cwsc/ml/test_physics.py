"""Physics-guided learning: gradients through the month loop, and learning sc from runoff."""

import numpy as np
import pytest
import torch

from cwsc.errors import InputFileError, ParameterError
from cwsc.hydro.models import PARAMETERS, Forcing, run_months, runoff_with_gradients, simulate
from cwsc.ml.physics import LearnConfig, ParameterHead, Prior, calibrate_prior, learn_from_arrays
from cwsc.synthetic.fields import smooth_field
from cwsc.synthetic.forcing import synthetic_forcing


@pytest.mark.parametrize("model", list(PARAMETERS))
@pytest.mark.parametrize("formulation", ["conserving", "bounded", "seed"])
def test_runoff_with_gradients_is_the_model_and_its_gradients_are_finite(model, formulation):
    p, e = synthetic_forcing(48, 96, seed=3)
    p, e = torch.tensor(p.T.copy()), torch.tensor(e.T.copy())  # float32, (months, cells)
    rng = np.random.default_rng(0)
    prm = {
        k: torch.tensor(rng.uniform(lo, hi, 48), dtype=torch.float32, requires_grad=True)
        for k, (lo, hi, _) in PARAMETERS[model].items()
    }
    forcing = Forcing(model, p, e, formulation)
    plain = run_months(forcing, {k: v.detach() for k, v in prm.items()})["runoff"]
    q = runoff_with_gradients(forcing, prm)
    torch.testing.assert_close(q.detach(), plain, rtol=1e-6, atol=1e-5)
    q.sum().backward()
    full = {k: v.grad.clone() for k, v in prm.items()}
    assert all(torch.isfinite(g).all() for g in full.values())
    assert any(float(g.abs().sum()) > 0 for g in full.values())
    for v in prm.values():
        v.grad = None
    runoff_with_gradients(forcing, prm, checkpoint_months=20).sum().backward()
    for k, v in prm.items():
        torch.testing.assert_close(v.grad, full[k], rtol=1e-5, atol=1e-4)


def test_the_gradient_in_sc_matches_a_finite_difference():
    p, e = synthetic_forcing(6, 120, seed=5)
    p, e = torch.tensor(p.T.copy(), dtype=torch.float64), torch.tensor(e.T.copy(), dtype=torch.float64)
    for model in PARAMETERS:
        base = {
            k: torch.full((6,), lo + 0.4 * (hi - lo), dtype=torch.float64)
            for k, (lo, hi, _) in PARAMETERS[model].items()
        }
        sc = base["sc"].clone().requires_grad_(True)
        forcing = Forcing(model, p, e)
        runoff_with_gradients(forcing, {**base, "sc": sc}).sum().backward()
        h = 1e-4
        up = run_months(forcing, {**base, "sc": base["sc"] + h})["runoff"].sum(0)
        down = run_months(forcing, {**base, "sc": base["sc"] - h})["runoff"].sum(0)
        torch.testing.assert_close(sc.grad, (up - down) / (2 * h), rtol=1e-4, atol=1e-6)


def one_model_twin(shape=(24, 24), months=120, seed=0):
    """Every cell's runoff from SWBM with sc a smooth function of predictor 0."""
    rng = np.random.default_rng(seed)
    preds = np.stack([smooth_field(rng, shape, 3) for _ in range(4)]).astype(np.float32)
    truth = 60.0 + 400.0 / (1.0 + np.exp(-1.5 * preds[0]))
    p, e = synthetic_forcing(shape[0] * shape[1], months, seed=seed)
    sim = simulate("SWBM", p, e, {"sc": truth.ravel(), "ks": 0.3, "kg": 0.2})
    q = sim.runoff * rng.lognormal(0, 0.05, sim.runoff.shape)

    def grid(a):
        return np.ascontiguousarray(a.T.reshape(months, *shape)).astype(np.float32)

    return preds, grid(p), grid(e), grid(q), truth


@pytest.mark.slow
def test_learning_recovers_sc_from_runoff_of_one_model():
    preds, p, e, q, truth = one_model_twin()
    q[:, :2, :] = np.nan  # cells without runoff take no part
    config = LearnConfig(
        models=("SWBM",), epochs=25, batch_size=64, patch_size=5, seed=0, patience=25, pretrain_epochs=0
    )  # from runoff alone
    records = []
    result = learn_from_arrays(preds, p, e, q, config, lambda rec, f: records.append(rec))
    assert (result.rows >= 2).all() and len(result.rows) > 0.9 * 22 * 24
    assert records[-1]["val_loss"] < records[0]["val_loss"]
    t = truth[result.rows, result.cols]
    r = np.corrcoef(result.sc[0], t)[0, 1]
    held = result.part == 2
    print(
        f"\none-model twin: sc vs truth r = {r:.3f}; held-out validation KGE "
        f"{result.metrics['val_kge_test_cells']:.3f}, {result.seconds:.1f} s"
    )
    assert r > 0.8
    assert np.corrcoef(result.cwsc[held], t[held])[0, 1] > 0.7
    assert result.metrics["val_kge_test_cells"] > 0.5
    assert result.network.outputs == ParameterHead(("SWBM",)).outputs == 4


@pytest.mark.slow
def test_pretraining_on_a_calibration_of_the_training_cells_starts_learning_near_it():
    preds, p, e, q, truth = one_model_twin()
    base = dict(models=("SWBM",), epochs=1, batch_size=64, patch_size=5, seed=0)
    alone = learn_from_arrays(preds, p, e, q, LearnConfig(**base, pretrain_epochs=0))
    result = learn_from_arrays(preds, p, e, q, LearnConfig(**base, pretrain_epochs=30))
    t = truth[result.rows, result.cols]
    r_alone, r = (np.corrcoef(x.sc[0], t)[0, 1] for x in (alone, result))
    held = result.part == 2
    print(
        f"\nafter one epoch: sc vs truth r {r_alone:.3f} from runoff alone, {r:.3f} pretrained; "
        f"held-out validation KGE {alone.metrics['val_kge_test_cells']:.3f}, "
        f"{result.metrics['val_kge_test_cells']:.3f}"
    )
    assert r > 0.9 and r > r_alone + 0.1
    assert np.corrcoef(result.cwsc[held], t[held])[0, 1] > 0.85
    assert result.metrics["val_kge_test_cells"] > alone.metrics["val_kge_test_cells"]
    assert result.metrics["pretrained_cells"] == result.metrics["train_cells"]
    assert alone.metrics["pretrained_cells"] == 0


def test_the_pretraining_never_sees_a_calibration_of_validation_or_held_out_cells():
    preds, p, e, q, _ = one_model_twin(shape=(12, 12), months=60)
    config = LearnConfig(models=("SWBM",), epochs=1, batch_size=16, patch_size=5, seed=3, pretrain_epochs=5)
    rows, cols = np.nonzero(np.ones((12, 12), bool))
    prior = calibrate_prior(p, pet=e, runoff=q, rows=rows, cols=cols, config=config)
    first = learn_from_arrays(preds, p, e, q, config, prior=prior)
    # The other cells' calibration replaced by nonsense: nothing learned may change.
    other = np.zeros((12, 12), bool)
    other[first.rows[first.part != 0], first.cols[first.part != 0]] = True
    spoiled = Prior(
        {
            m: {k: np.where(other, v[::-1, ::-1] * 0.5, v) for k, v in prm.items()}
            for m, prm in prior.params.items()
        },
        np.where(other[None], 0.99, prior.kge),
        np.where(other, 5.0, prior.cwsc),
    )
    second = learn_from_arrays(preds, p, e, q, config, prior=spoiled)
    assert other.sum() > 30 and all(torch.equal(first.state[k], second.state[k]) for k in first.state)
    with pytest.raises(ParameterError, match="PRETRAIN_EPOCHS: -1"):
        learn_from_arrays(preds, p, e, q, LearnConfig(models=("SWBM",), pretrain_epochs=-1))


def test_learning_refuses_bad_input():
    preds, p, e, q, _ = one_model_twin(shape=(12, 12), months=60)
    with pytest.raises(InputFileError, match="RUNOFF: no cell"):
        learn_from_arrays(preds, p, e, np.full_like(q, np.nan), LearnConfig(models=("SWBM",), patch_size=5))
    with pytest.raises(ParameterError, match="MODELS: unknown model 'HBV'"):
        learn_from_arrays(preds, p, e, q, LearnConfig(models=("HBV",), patch_size=5))
    with pytest.raises(InputFileError, match="at least 2 are needed"):
        learn_from_arrays(preds, p, e, q, LearnConfig(models=("SWBM",), patch_size=5, test_fraction=0.99))


def test_a_batch_larger_than_the_training_cells_takes_them_all(caplog):
    """A small region at the default batch size learns (one step of all its training cells
    per epoch, said in the log) where it was refused."""
    preds, p, e, q, _ = one_model_twin(shape=(12, 12), months=60)
    config = LearnConfig(models=("SWBM",), patch_size=5, epochs=2, pretrain_epochs=0, batch_size=500)
    with caplog.at_level("INFO", logger="cwsc.ml.physics.learning"):
        result = learn_from_arrays(preds, p, e, q, config)
    train = result.metrics["train_cells"]
    assert 2 <= train < 500 and result.metrics["epochs_run"] == 2
    assert f"BATCH_SIZE 500 is more than the {train} training cells" in caplog.text


@pytest.mark.slow  # a calibration, a pretraining and a learning: 10 s idle, a minute under load
def test_the_progress_shares_follow_the_measured_time_of_each_stage():
    """The stage estimates that share out the progress bar (``on_plan``) against the time the
    pretraining and the learning take, with the default network and batch sizes: the
    pretraining's share of the bar is its share of the time within a factor of three (it sat
    at 17-23 % through a pretraining of 40 % of the run), and the shares come before the
    stages run. (The calibration is given, as its pool's start dominates on so few cells.)"""
    import time

    from cwsc.commands.learn import progress_bounds

    preds, p, e, q, _ = one_model_twin(shape=(16, 16), months=72)
    config = LearnConfig(models=("SWBM",), epochs=3, patience=3, pretrain_epochs=10, seed=0, device="cpu")
    rows, cols = np.nonzero(np.ones((16, 16), bool))
    prior = calibrate_prior(p, e, q, rows, cols, config)
    marks: dict[str, list[float]] = {"pretraining": [], "learning": []}
    plans = []

    def on_plan(seconds):
        plans.append(seconds)
        marks["plan"] = [time.perf_counter()]

    learn_from_arrays(
        preds,
        p,
        e,
        q,
        config,
        on_epoch=lambda rec, f: marks["learning"].append(time.perf_counter()),
        prior=prior,
        on_pretrain=lambda k, n: marks["pretraining"].append(time.perf_counter()),
        on_plan=on_plan,
    )
    assert len(plans) == 1 and plans[0]["calibration"] == 0.0
    assert marks["plan"][0] < marks["pretraining"][0] < marks["pretraining"][-1] < marks["learning"][0]
    took = np.diff([marks["plan"][0], marks["pretraining"][-1], marks["learning"][-1]])
    estimate = np.array([plans[0]["pretraining"], plans[0]["learning"]])
    measured_share, estimated_share = took[0] / took.sum(), estimate[0] / estimate.sum()
    print(f"\npretraining, learning took {np.round(took, 2)} s, estimated {np.round(estimate, 2)} s")
    assert 1 / 3 < measured_share / estimated_share < 3
    bounds = progress_bounds(plans[0])
    assert bounds["pretraining"][1] - bounds["pretraining"][0] == pytest.approx(0.85 * estimated_share)
    edges = [x for k in ("calibration", "pretraining", "learning") for x in bounds[k]]
    assert edges == sorted(edges) and edges[0] == 0.05 and edges[-1] == pytest.approx(0.9)


@pytest.mark.slow
def test_cells_with_more_runoff_than_precipitation_take_no_part():
    preds, p, e, q, _ = one_model_twin(shape=(12, 12), months=60)
    q[:, 0, :] = 2.0 * p[:, 0, :]  # row 0: no water balance makes this runoff
    q[:, 1, :3] = 0.9 * p[:, 1, :3]  # a high runoff coefficient is possible: these stay
    config = LearnConfig(models=("SWBM",), patch_size=5, epochs=1, batch_size=16)
    result = learn_from_arrays(preds, p, e, q, config)
    assert (result.rows > 0).all() and ((result.rows == 1) & (result.cols < 3)).sum() == 3
    assert result.metrics["cells_runoff_above_precipitation"] == 12
    with pytest.raises(InputFileError, match="144 of them more runoff than precipitation"):
        learn_from_arrays(preds, p, e, 1.5 * p, config)


def test_the_soft_minimum_follows_the_best_model_of_each_cell():
    from cwsc.ml.physics import SOFT_MIN_WIDTH, combine

    losses = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.9, 0.9]])
    best = combine(losses, "best")
    expected = 0.5 * (0.1 + 0.2) + 0.1 * losses.mean()
    assert abs(float(best) - float(expected)) < 2 * SOFT_MIN_WIDTH * 0.05
    assert float(combine(losses, "mean")) == pytest.approx(float(losses.mean()))
    assert float(combine(losses[:1], "best")) == pytest.approx(float(losses[:1].mean()))


def test_a_cell_whose_runoff_no_model_fits_takes_no_part():
    from cwsc.ml.physics import combine, kge_mask_weight

    losses = torch.tensor([[0.1, 1.6, 0.4], [0.3, 1.2, 0.9]])  # cell 1: best KGE -0.2
    weight = kge_mask_weight(losses, 0.0)
    assert weight.tolist() == [1.0, 0.0, 1.0]
    assert kge_mask_weight(losses, None) is None
    masked = combine(losses, "mean", weight=weight)
    assert float(masked) == pytest.approx(float(losses[:, [0, 2]].mean()))


def test_the_parameter_head_scales_sc_by_ratios_and_can_share_it():
    from cwsc.ml.physics import LOG_SC_FLOOR

    head = ParameterHead(("SWBM", "TVGM"))
    raw = torch.zeros((3, head.outputs))
    raw[:, head.names.index(("SWBM", "sc"))] = torch.tensor([-20.0, 0.0, 20.0])
    sc = head.parameters(raw)["SWBM"]["sc"]
    # sigmoid 0 -> the geometric middle of [1, 1000] mm; the ends reach the bounds.
    assert sc.tolist() == pytest.approx([LOG_SC_FLOOR, (LOG_SC_FLOOR * 1000) ** 0.5, 1000], rel=1e-3)
    assert head.parameters(raw)["TVGM"]["sc"].tolist() == pytest.approx([31.62] * 3, rel=1e-3)
    shared = ParameterHead(("SWBM", "TVGM"), shared_sc=True)
    prm = shared.parameters(raw)
    torch.testing.assert_close(prm["TVGM"]["sc"], prm["SWBM"]["sc"])
    # Every parameter starts at its model's initial value (sc on the log scale).
    start = head.parameters(head.initial_bias()[None])
    assert float(start["SWBM"]["sc"]) == pytest.approx(PARAMETERS["SWBM"]["sc"][2], rel=1e-3)
    assert float(start["TVGM"]["gamma"]) == pytest.approx(PARAMETERS["TVGM"]["gamma"][2], rel=1e-3)
    # Corrections may move every parameter but sc, never the fits.
    movable = dict(zip(head.names, head.correctable().tolist()))
    assert not movable[("SWBM", "sc")] and movable[("SWBM", "ks")]
    assert not head.correctable()[len(head.names) :].any()
    assert ParameterHead.from_dict(shared.to_dict()) == shared
