"""`mcsim merge`: combine result files of one ensemble exactly, through the accumulator merge.

Files may differ only in the seed, the block range (`ensemble.first_block`) and the number of
networks. Two files of the same seed must cover disjoint block ranges, otherwise they hold the
same networks twice. Bins are merged bin by bin (Chan/Pebay), so the merged estimates equal
those of one run over the union up to floating-point rounding, and merging is associative
to rounding (the test suite checks 1e-12 relative).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ResultFileError, ResumeError
from ..config.compat import first_difference, merge_key
from ..stats.estimators import compute_estimates
from ..stats.results import Result, build_result
from .hdf5 import resolve_output, write_run
from .lock import OutputLock
from .reader import is_complete, read_run


def _ranges(run) -> list[dict]:
    """Provenance: the (seed, first_block, blocks) ranges a file holds."""
    stored = run.attrs.get("block_ranges")
    if stored:
        try:
            ranges = json.loads(stored)
            ok = isinstance(ranges, list) and ranges and all(
                isinstance(r, dict) and all(isinstance(r.get(key), int) and not isinstance(r.get(key), bool)
                                            and r[key] >= 0 for key in ("seed", "first_block", "blocks"))
                for r in ranges)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ResultFileError(f"{run.path}: attribute block_ranges is not a list of "
                                  "{seed, first_block, blocks} (damaged file)")
        return ranges
    acc = run.accumulator
    return [{"seed": run.config.ensemble.seed, "first_block": acc.first_block, "blocks": acc.blocks}]


def merge_files(paths, output, force: bool = False) -> Result:
    """Merge the runs `paths` into `output`, holding the output's lock (`storage.lock`)."""
    output = resolve_output(output)
    with OutputLock(output, "mcsim merge"):
        return _merge_files(paths, output, force)


def _merge_files(paths, output: Path, force: bool) -> Result:
    if output.exists() and not force:
        raise ResumeError(f"{output} exists; use --force to overwrite it")
    for p in paths:
        if Path(p).exists() and output.exists() and Path(p).resolve() == output.resolve():
            raise ResumeError(f"{p} is both an input and the output; write the merge to a new file")
    runs = [read_run(p) for p in paths]
    for run in runs:
        if run.accumulator is None:
            raise ResumeError(f"{run.path} holds no accumulator state and cannot be merged")
    first = runs[0]
    ranges = list(_ranges(first))
    for run in runs[1:]:
        diff = first_difference(merge_key(first.config), merge_key(run.config))
        if diff:
            raise ResumeError(f"cannot merge {run.path} with {first.path}: they differ in {diff}")
        diff = first.accumulator.layout.difference(run.accumulator.layout)
        if diff:
            raise ResumeError(f"cannot merge {run.path} with {first.path}: their accumulators differ "
                              f"in layout ({diff})")
        for r in _ranges(run):
            for q in ranges:
                if r["seed"] == q["seed"] and r["first_block"] < q["first_block"] + q["blocks"] \
                        and q["first_block"] < r["first_block"] + r["blocks"]:
                    raise ResumeError(
                        f"cannot merge {run.path}: it shares seed {r['seed']} and blocks "
                        f"{max(r['first_block'], q['first_block'])}.. with another input, so the "
                        "same networks would be counted twice (use different seeds or "
                        "ensemble.first_block ranges)")
            ranges.append(r)
    acc = first.accumulator
    for run in runs[1:]:
        acc.merge(run.accumulator)
    training = first.training
    if first.config.training is not None:
        if any(run.training is None for run in runs):
            raise ResumeError("cannot merge: a [training] run's file holds no /training accumulator")
        for run in runs[1:]:
            training.merge(run.training)
    block_size = first.config.ensemble.block_size
    cfg = first.config.replace(networks=acc.blocks * block_size)
    seeds = sorted({r["seed"] for r in ranges})
    estimates = compute_estimates(cfg, acc)
    runtime = sum(float(r.attrs.get("runtime_seconds", 0.0)) for r in runs)
    attrs = {"networks": acc.networks, "networks_requested": acc.networks,
             "complete": all(is_complete(r.attrs) for r in runs),
             "blocks": acc.blocks, "runtime_seconds": runtime,
             "networks_per_second": acc.networks / runtime if runtime > 0 else 0.0,
             "merged": True, "merged_from": json.dumps([str(p) for p in paths]),
             "block_ranges": json.dumps(ranges), "seeds": json.dumps(seeds)}
    write_run(output, cfg, acc, estimates, attrs, training=training)
    result = build_result(cfg, estimates, attrs, output)
    if training is not None:
        from ..training.accumulate import result_of
        result.training = result_of(cfg, training)
    return result
