"""The registries: a new per-network quantity with one statistic, added by registering it.

The toy quantity is q = (Ghat^(l)_11)^2 per network and layer, filled by a small kernel of its
own in a toy sampler backend (markov plus the toy kernel); the toy statistic is its mean,
with a "prediction". Nothing in mcsim is edited: the quantity, the statistic and the sampler
are registered here, and the run is measured, stored, read back, printed by `mcsim info` and
compared. The plumbing is checked against an exact identity: the sample mean of g^2 equals
mean(g)^2 + (N-1)/N * Var(g), so the toy estimate must equal metric^2 + (N-1)/N vertex/n
computed from the other statistics of the same run, to rounding.
"""
from __future__ import annotations

import h5py
import numba
import numpy as np
import pytest

import mcsim
from mcsim.analysis.compare import compare
from mcsim.analysis.report import format_result
from mcsim.config import config_from_dict
from mcsim.errors import ResumeError
from mcsim.samplers import SAMPLERS, register_sampler
from mcsim.samplers.markov import MarkovSampler
from mcsim.stats.quantities import QUANTITIES, Quantity, register_quantity
from mcsim.stats.statistics import STATISTICS, Statistic, register_statistic


@numba.njit(cache=False)
def _square_first_entry(gram, out):
    # gram (nb, bs, S, m) -> out (nb, bs, S) = gram[..., 0]^2   (the toy quantity's kernel)
    nb, bs, S = out.shape
    for i in range(nb):
        for j in range(bs):
            for s in range(S):
                out[i, j, s] = gram[i, j, s, 0] * gram[i, j, s, 0]


class ToySampler(MarkovSampler):
    name = "toy"
    description = "markov plus the toy quantity (tests only)"

    @classmethod
    def fills(cls, cfg):
        return ("gram", "toy_square")

    def sample(self, first_block, n_blocks, out):
        m = cfg_m = self.cfg.k * (self.cfg.k + 1) // 2
        gram = np.empty(out.shape[:3] + (cfg_m,))
        super().sample(first_block, n_blocks, gram)
        for name in self.layout.names:
            s = self.layout.slice(name)
            if name == "gram":
                out[..., s] = gram
            else:
                sq = np.empty(out.shape[:3])
                _square_first_entry(gram, sq)
                out[..., s.start] = sq
        assert m == cfg_m


@pytest.fixture
def toy_registry():
    q = register_quantity(Quantity(
        name="toy_square", description="(Ghat^(l)_11)^2", length=lambda cfg: 1,
        unpack=lambda packed, k: packed[..., 0], samplers=("toy",)))
    st = register_statistic(Statistic(
        name="toy_mean_square", needs={"toy_square": 2}, shape=lambda k: (),
        description="E[(Ghat_11)^2]", units="z^4",
        estimate=lambda mom, fan_in: mom.mean("toy_square").copy(),
        unpack=lambda packed, k: packed[..., 0],
        first_layer=lambda gram1, cfg: np.float64(gram1[0, 0] ** 2),
        distinct=lambda k: [()], label=lambda idx: "Q",
        prediction=lambda p: (p.metric[0, 0] ** 2 + p.vertex[0, 0, 0, 0] / p.fan_in,
                              p.kernel[0, 0] ** 2, None),
        prediction_note="K^2 + V/n to leading order"))
    register_sampler(ToySampler)
    yield q, st
    QUANTITIES.pop("toy_square", None)
    STATISTICS.pop("toy_mean_square", None)
    SAMPLERS.pop("toy", None)


def _config(statistics, sampler="toy"):
    return config_from_dict({
        "network": {"input_dim": 2, "widths": [5, 7, 3], "activation": "tanh", "C_W": 1.5, "C_b": 0.1},
        "inputs": {"values": [[1.0, 0.3], [-0.4, 0.8]]},
        "ensemble": {"networks": 2048, "seed": 8, "block_size": 128, "jackknife_bins": 8,
                     "sampler": sampler},
        "output": {"statistics": statistics}})


def test_toy_quantity_end_to_end(toy_registry, tmp_path):
    cfg = _config(["metric", "vertex", "toy_mean_square"])
    out = tmp_path / "toy.h5"
    res = mcsim.simulate(cfg, output=out, progress="off")
    N = res.networks
    for l in (2, 3):
        le = res.layer(l)
        g, v = le.metric.mean[0, 0], le.vertex.mean[0, 0, 0, 0]
        want = g ** 2 + (N - 1) / N * v / le.fan_in
        assert le["toy_mean_square"].mean == pytest.approx(want, rel=1e-12)
        assert le.toy_mean_square.stderr > 0
    assert res.layer(1).toy_mean_square.mean == pytest.approx(res.layer(1).metric.mean[0, 0] ** 2)
    # stored with its description, layout recorded; read back by the one reader
    with h5py.File(out, "r") as f:
        assert f["layers/3/toy_mean_square"].attrs["description"] == "E[(Ghat_11)^2]"
        assert list(f["accumulator"].attrs["quantities"]) == ["gram", "toy_square"]
        assert list(f["accumulator"].attrs["lengths"]) == [3, 1]
    back = mcsim.open_result(out)
    assert back.layer(3)["toy_mean_square"].mean == res.layer(3).toy_mean_square.mean
    # printed and compared like any statistic
    text = format_result(back)
    assert "toy_mean_square: E[(Ghat_11)^2]" in text and "    Q " in text
    rows = compare(back).select("toy_mean_square")
    assert len(rows) == 3 and set(rows["layer"]) == {1, 2, 3}
    # resume (nothing to do) and extension keep working; another statistic set is refused
    mcsim.simulate(cfg.replace(networks=4096), output=out, progress="off")
    assert mcsim.open_result(out).networks == 4096
    with pytest.raises(ResumeError, match="output.statistics"):
        mcsim.simulate(_config(["metric", "vertex"]), output=out, progress="off")


def test_unknown_statistic_and_sampler_are_config_errors():
    from mcsim.config import ConfigError
    with pytest.raises(ConfigError, match="output.statistics: 'toy_mean_square' is not allowed"):
        _config(["toy_mean_square"], sampler="markov")
    with pytest.raises(ConfigError, match="ensemble.sampler: 'toy' is not allowed"):
        _config(["metric"])


def test_samplers_fill_registered_quantities():
    """Every sampler's declared quantities are registered and list it as a producer."""
    cfg = _config(["metric"], sampler="markov")
    for name, cls in SAMPLERS.items():
        for q in cls.fills(cfg):
            assert q in QUANTITIES, (name, q)
            assert name in QUANTITIES[q].samplers, (name, q)
    for q in QUANTITIES.values():
        for s in q.samplers:
            if s in SAMPLERS:
                assert q.name in SAMPLERS[s].fills(cfg), (q.name, s)


def test_every_statistic_has_consistent_entries():
    """shape, unpack, first_layer and distinct agree for k = 1..3."""
    from mcsim.stats.estimators import first_layer_statistics
    for k in (1, 2, 3):
        cfg = config_from_dict({"network": {"input_dim": 2, "widths": [3, 2]},
                                "inputs": {"values": [[1.0, 0.5 * a] for a in range(k)]}})
        exact = first_layer_statistics(cfg, list(STATISTICS))
        for name, st in STATISTICS.items():
            mean, err = exact[name]
            assert mean.shape == st.shape(k) == err.shape, name
            for idx in st.distinct(k):
                mean[idx]                               # every distinct index is valid
                assert st.label(idx)
            assert st.description and st.units, name


def test_prediction_file_reads_back_every_dataset(tmp_path):
    """`mcsim theory -o` writes ntk, metric_leading, ...; the one reader returns them all."""
    from mcsim.cli import main
    from mcsim.theory.full import predict_config
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(_config(["metric"], sampler="markov").to_toml())
    assert main(["theory", str(cfg_path), "-o", str(tmp_path / "p.h5")]) == 0
    res = mcsim.open_result(tmp_path / "p.h5")
    pred = predict_config(mcsim.load_config(cfg_path))
    for l in (1, 2, 3):
        le = res.layer(l)
        np.testing.assert_allclose(le["ntk"].mean, pred.layer(l).ntk, rtol=1e-13)
        np.testing.assert_allclose(le["metric_leading"].mean, pred.layer(l).kernel, rtol=1e-13)
        assert np.all(le["ntk"].stderr == 0)


def test_newer_format_refused_everywhere(tmp_path):
    """A file of a newer format version is refused by every reader, naming the version."""
    from mcsim.analysis.compare import read_measurements
    from mcsim.errors import ResultFileError
    from mcsim.storage.reader import read_run, result_status
    out = tmp_path / "r.h5"
    mcsim.simulate(_config(["metric"], sampler="markov").replace(networks=256), output=out,
                   progress="off")
    with h5py.File(out, "r+") as f:
        f.attrs["format_version"] = 99
    for reader in (mcsim.open_result, read_run, read_measurements):
        with pytest.raises(ResultFileError, match="newer mcsim"):
            reader(out)
    assert result_status(out) == "damaged"
