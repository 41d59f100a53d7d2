"""Fitting batch-time models to measurements, and hardware profiles stored and loaded by name
(no torch needed)."""

import numpy as np
import pytest
import yaml

from llmqueue.config import ScenarioError, load_scenario
from llmqueue.engine import AffineBatchTime, PiecewiseLinearBatchTime, StaircaseBatchTime
from llmqueue.real.fit import fit_all, r2_of
from llmqueue.real.profiles import ProfileError, list_profiles, load_profile, read_profile, save_profile

RNG = np.random.default_rng(0)
P = RNG.integers(0, 300, 400)
D = RNG.integers(0, 130, 400)
C = D * RNG.integers(10, 500, 400) + P


def test_recovers_a_staircase():
    true = StaircaseBatchTime(c=0.004, a=0.012, b0=64)
    t = np.array([true.duration(p, d) for p, d in zip(P, D)])
    f = fit_all(P, D, C, t)["staircase"]
    assert f.params["b0"] == 64 and f.r2 > 0.999999
    assert f.params["c_ms"] == pytest.approx(4.0, rel=1e-6) and f.params["a_ms"] == pytest.approx(12.0, rel=1e-6)


def test_recovers_a_piecewise_linear():
    true = PiecewiseLinearBatchTime(c=0.01, a=0.0002, b0=96)
    t = np.array([true.duration(p, d) for p, d in zip(P, D)])
    f = fit_all(P, D, C, t)["piecewise_linear"]
    assert f.params["b0"] == 96 and f.r2 > 0.999999
    assert f.params["a_ms"] == pytest.approx(0.2, rel=1e-6)


def test_recovers_an_affine_model_under_noise_and_reports_residuals():
    true = AffineBatchTime(c=0.003, a_prefill=1e-4, a_decode=6e-5, a_context=2e-6)
    t = np.array([true.duration(p, d, c) for p, d, c in zip(P, D, C)])
    noisy = t * (1 + 0.02 * RNG.standard_normal(len(t)))
    fits = fit_all(P, D, C, noisy)
    a = fits["affine"]
    assert a.params["prefill_ms"] == pytest.approx(0.1, rel=0.05)
    assert a.params["context_ms"] == pytest.approx(0.002, rel=0.05)
    assert a.r2 > 0.99 and 0.005 < a.mean_rel_err < 0.04
    assert len(a.residuals_ms) == len(t) and a.max_abs_ms >= a.rmse_ms
    # the load-only models cannot see the context term: they fit worse
    assert fits["staircase"].r2 < a.r2 and fits["piecewise_linear"].r2 < a.r2
    assert r2_of(a.build(), P, D, C, noisy) == pytest.approx(a.r2)


def test_fit_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 4"):
        fit_all([1, 2], [0, 0], [1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="> 0"):
        fit_all([1, 2, 3, 4], [0] * 4, [1] * 4, [0.1, 0.2, 0.0, 0.3])


def _profile(tmp_path):
    t = np.array([AffineBatchTime(0.002, 1e-4, 5e-5, 1e-6).duration(p, d, c) for p, d, c in zip(P, D, C)])
    fits = fit_all(P, D, C, t)
    prof = {"name": "test-cpu", "recommended": "affine",
            "fits": {k: {**f.summary(), "r2_raw_samples": f.r2} for k, f in fits.items()}}
    return save_profile(prof, "test-cpu", tmp_path)


def test_profile_round_trip_and_scenario_key(tmp_path, monkeypatch):
    path = _profile(tmp_path)
    assert path == tmp_path / "test-cpu.yaml" and list_profiles(tmp_path) == ["test-cpu"]
    bt = load_profile("test-cpu", directory=tmp_path)
    assert isinstance(bt, AffineBatchTime) and bt.c == pytest.approx(0.002)
    assert isinstance(load_profile("test-cpu", "staircase", tmp_path), StaircaseBatchTime)
    assert isinstance(load_profile(str(path)), AffineBatchTime)          # a path works as a name
    monkeypatch.setenv("LLMQUEUE_PROFILES", str(tmp_path))
    sc = tmp_path / "s.yaml"
    doc = {"engine": {"policy": "sarathi", "token_budget": 128,
                      "batch_time": {"model": "profile", "name": "test-cpu"}},
           "workload": {"arrival": {"rate": 1.0}, "prompt_tokens": {"dist": "fixed", "value": 4},
                        "decode_tokens": {"dist": "fixed", "value": 4}, "num_requests": 3}}
    sc.write_text(yaml.safe_dump(doc))
    assert load_scenario(str(sc)).build_batch_time() == bt
    doc["engine"]["batch_time"]["fit"] = "cubic"
    sc.write_text(yaml.safe_dump(doc))
    with pytest.raises(ScenarioError, match=r"engine\.batch_time\.(profile\.)?fit: Input should be"):
        load_scenario(str(sc))


def test_profile_errors_say_what_to_do(tmp_path):
    _profile(tmp_path)
    with pytest.raises(ProfileError, match=r"no hardware profile 'gpu'.*known: test-cpu.*llmqueue profile"):
        load_profile("gpu", directory=tmp_path)
    with pytest.raises(ProfileError, match="must be letters"):
        load_profile("../etc/passwd", directory=tmp_path)
    with pytest.raises(ProfileError, match="unknown fit"):
        load_profile("test-cpu", "cubic", tmp_path)
    (tmp_path / "broken.yaml").write_text("just: text\n")
    with pytest.raises(ProfileError, match="not a hardware profile"):
        read_profile("broken", tmp_path)
