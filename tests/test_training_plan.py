"""`mcsim plan` and the size checks count the training of a [training] run.

No wall-clock value is asserted: the pilot's clock is replaced by one that advances by a fixed
cost per unit of work (per sampled network, per network x step), so the plan's bookkeeping is
checked exactly, and the real-clock run only checks structure."""
from __future__ import annotations

import math

import pytest

from mcsim.config import config_from_dict
from mcsim.run import plan as plan_module
from mcsim.run.plan import plan
from mcsim.run.sizes import estimate_run
from mcsim.run.worker import BlockWorker
from mcsim.training.accumulate import TrainingWorker
from tests.test_training import raw_config

TARGET = {"statistic": "metric", "layer": 2, "relative_stderr": 0.001}
SAMPLE_COST, STEP_COST = 1e-6, 1e-5          # fake seconds per network, per network x step


def cfg_with(steps):
    return config_from_dict(raw_config(n=4, depth=2, networks=4096, block_size=32, bins=8, steps=steps,
                                       record=[0, steps]))


@pytest.fixture
def fake_clock(monkeypatch):
    """plan.py's clock advances only by the modelled cost of the work done."""
    now = [0.0]

    class Clock:
        @staticmethod
        def monotonic():
            return now[0]

    def timed(run, cost):
        def wrapper(self, first, n):
            out = run(self, first, n)
            now[0] += n * self.bs * cost(self)
            return out
        return wrapper

    monkeypatch.setattr(plan_module, "time", Clock)
    monkeypatch.setattr(BlockWorker, "run", timed(BlockWorker.run, lambda w: SAMPLE_COST))
    monkeypatch.setattr(TrainingWorker, "run", timed(TrainingWorker.run, lambda w: STEP_COST * w.steps))
    return now


def test_plan_time_grows_with_training_steps(fake_clock):
    plans = {s: plan(cfg_with(s), TARGET, pilot_seconds=0.0, announce=False) for s in (10, 40)}
    for steps, p in plans.items():
        assert p.training_steps == steps
        assert p.pilot_networks == 8 * 32                   # one block per jackknife bin
        assert p.seconds_per_network_step == pytest.approx(STEP_COST, rel=1e-12)
        assert p.sampling_seconds_per_network == pytest.approx(SAMPLE_COST, rel=1e-9)
        assert p.network_steps_needed == p.networks_needed * steps
        assert p.seconds_needed == pytest.approx(p.networks_needed * (SAMPLE_COST + steps * STEP_COST), rel=1e-9)
        # the overall rate (networks per second) counts the training too
        assert p.rate == pytest.approx(1 / (SAMPLE_COST + steps * STEP_COST), rel=1e-9)
        assert "network x steps" in p.text() and "/training" in p.text()
    # the same pilot (training does not touch the layer statistics), four times the steps:
    # the same networks, and the training part of the time four times as long
    a, b = plans[10], plans[40]
    assert a.networks_needed == b.networks_needed and math.isfinite(a.networks_needed)
    train = {s: p.seconds_needed - p.networks_needed * p.sampling_seconds_per_network for s, p in plans.items()}
    assert train[40] == pytest.approx(4 * train[10], rel=1e-9)
    assert b.seconds_needed > a.seconds_needed


def test_plan_with_the_real_clock_trains_its_pilot():
    p = plan(cfg_with(10), TARGET, pilot_seconds=0.0, announce=False)
    assert p.training_steps == 10 and p.training_seconds > 0
    assert 0 < p.training_seconds <= p.pilot_seconds
    assert p.size is not None and "training" in p.size.parts
    no_training = config_from_dict({k: v for k, v in raw_config(n=4, depth=2, networks=4096, block_size=32,
                                                                bins=8).items() if k != "training"})
    q = plan(no_training, TARGET, pilot_seconds=0.0, announce=False)
    assert q.training_steps == 0 and q.training_seconds == 0 and q.network_steps_needed == 0
    assert "network x steps" not in q.text()


def test_size_estimate_counts_the_training_group():
    """The /training state is B R (M + M^2) doubles (M = 3 k n_L + 4): it grows with the recorded
    steps R, and the estimate of a run with [training] exceeds the same run's without."""
    cfg = config_from_dict(raw_config(n=4, depth=2, networks=4096, block_size=32, bins=8, steps=40,
                                      record=[0, 40]))
    plain = config_from_dict({k: v for k, v in raw_config(n=4, depth=2, networks=4096, block_size=32,
                                                          bins=8).items() if k != "training"})
    more = config_from_dict(raw_config(n=4, depth=2, networks=4096, block_size=32, bins=8, steps=40,
                                       record=[0, 10, 20, 30, 40]))
    s0, s2, s5 = estimate_run(plain), estimate_run(cfg), estimate_run(more)
    M = 3 * 2 * 1 + 4
    state = 8 * (M + M * M)                 # one bin, one recorded step
    assert s2.file - s0.file >= 8 * 2 * state
    assert s5.file - s2.file >= 8 * 3 * state
    assert s5.parts["training"] - s2.parts["training"] >= 4 * 8 * 3 * state
    assert "training" not in s0.parts
