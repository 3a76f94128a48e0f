"""Hyperparameter sweeps: grid or random trials over TrainConfig fields, one run directory each.

A search space is a list of ``name=values`` specs (``--param`` on the command line), each
naming a ``TrainConfig`` field. Grid values are separated by commas or semicolons; for list
fields (``head_units``, ``dropout``, ...) semicolons separate the values and commas or slashes
the elements of one value (``head_units=512/512/512;1024/512/256``). Random search also takes
``uniform:LOW:HIGH`` and ``loguniform:LOW:HIGH`` for numeric fields.

Trials are a pure function of (space, search, seed): trial ``i`` is ``trial_<i>_<hash of its
overrides>``, trained by ``loop.train_and_evaluate`` into ``<sweep_dir>/<trial_id>``, which
writes its HParams there, so TensorBoard's HParams dashboard compares the trials.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import os
import random
import re
import typing

import keras
from absl import logging

from tfgender.config import TrainConfig, check_train, parse_value
from tfgender.files import HISTORY_FILE, SUMMARY_FILE, write_json_atomic
from tfgender.training import loop

RESULTS = "sweep.json"
TABLE = "trials.md"
SEARCHES = ("grid", "random")
DISTRIBUTIONS = ("uniform", "loguniform")
# Fields that change how a run is shown, not what it computes: they may differ on resume.
COSMETIC_FIELDS = ("progress",)


class SweepError(ValueError):
    """The search space, the budget or the sweep directory is unusable; says why."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched field: explicit ``values`` (grid points or random choices) or a range."""

    name: str
    values: tuple = ()
    distribution: str = ""  # "" (use values) | uniform | loguniform
    low: float = 0.0
    high: float = 0.0

    def to_json(self) -> dict:
        if self.distribution:
            return {"name": self.name, "distribution": self.distribution,
                    "low": self.low, "high": self.high}
        return {"name": self.name, "values": [_jsonable(v) for v in self.values]}


@dataclasses.dataclass(frozen=True)
class Trial:
    """One point of the space: its stable id and the TrainConfig fields it replaces."""

    trial_id: str
    overrides: dict


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _field_types() -> dict:
    return typing.get_type_hints(TrainConfig)


def _convert(name: str, text: str, kind) -> object:
    """One value of field ``name`` from its text: ``config.parse_value``, the reading of the
    command line and the flagfiles, after the sweep's own list syntax (elements separated
    by ``,`` or ``/``)."""
    if typing.get_origin(kind) is tuple:
        text = ",".join(p for p in re.split(r"[,/]", text) if p.strip())
    try:
        return parse_value(TrainConfig, name, text)
    except ValueError as err:
        raise SweepError(f"--param {name}: {err}") from None


def parse_param(spec: str) -> Param:
    """Parses one ``name=values`` spec into a ``Param``.

    Args:
        spec: ``name=v1,v2``, ``name=a,b;c,d`` (list fields), ``name=uniform:LOW:HIGH`` or
            ``name=loguniform:LOW:HIGH``.

    Returns:
        The parsed ``Param``, values converted to the field's type.

    Raises:
        SweepError: no ``=``, an unknown field (naming the closest ones), a value that does not
            convert, or an empty or inverted range.
    """
    name, sep, text = spec.partition("=")
    name = name.strip().lstrip("-")
    kinds = _field_types()
    if not sep or not name:
        raise SweepError(f"--param {spec!r}: expected NAME=VALUES, e.g. learning_rate=1e-3,1e-4")
    if name not in kinds:
        close = difflib.get_close_matches(name, kinds, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SweepError(f"--param {name}: unknown training flag {name!r}{hint}")
    kind = kinds[name]
    head, _, rest = text.partition(":")
    if head in DISTRIBUTIONS:
        if kind not in (int, float):
            raise SweepError(f"--param {name}: a {head} range needs a numeric flag")
        bounds = rest.split(":")
        try:
            low, high = (float(b) for b in bounds)
        except ValueError:
            raise SweepError(f"--param {name}: expected {head}:LOW:HIGH, got {text!r}") from None
        if not low < high or (head == "loguniform" and low <= 0):
            need = "0 < LOW < HIGH" if head == "loguniform" else "LOW < HIGH"
            raise SweepError(f"--param {name}: {head} needs {need}, got {low:g}:{high:g}")
        return Param(name, distribution=head, low=low, high=high)
    is_list = typing.get_origin(kind) is tuple
    texts = text.split(";") if is_list else re.split(r"[,;]", text)
    texts = [t for t in texts if t.strip() or is_list]
    if not texts or not text.strip():
        raise SweepError(f"--param {name}: no values")
    values = tuple(_convert(name, t, kind) for t in texts)
    if len(set(values)) != len(values):
        raise SweepError(f"--param {name}: a value is repeated in {text!r}")
    return Param(name, values=values)


def parse_space(specs) -> tuple[Param, ...]:
    """Parses every ``--param`` spec; see ``parse_param``.

    Raises:
        SweepError: from ``parse_param``, no specs, or a field named twice.
    """
    space = tuple(parse_param(s) for s in specs)
    if not space:
        raise SweepError("no --param given: name at least one flag to search over")
    names = [p.name for p in space]
    for name in names:
        if names.count(name) > 1:
            raise SweepError(f"--param {name} is given twice; list its values in one --param")
    return space


def _trial_id(index: int, overrides: dict) -> str:
    text = json.dumps({k: _jsonable(v) for k, v in overrides.items()}, sort_keys=True)
    return f"trial_{index:03d}_{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def _sample(param: Param, rng: random.Random, kind):
    if not param.distribution:
        return param.values[rng.randrange(len(param.values))]
    u = rng.random()
    if param.distribution == "loguniform":
        value = math.exp(math.log(param.low) + u * (math.log(param.high) - math.log(param.low)))
    else:
        value = param.low + u * (param.high - param.low)
    # Four significant digits keep tables and trial names readable; ints are rounded.
    return int(round(value)) if kind is int else float(f"{value:.4g}")


def make_trials(space, search: str = "grid", max_trials: int = 0, seed: int = 0) -> list:
    """The trials of a sweep, in order; the same arguments always give the same trials.

    Grid search takes the product of the values in ``--param`` order (the last varies
    fastest), cut to the budget. Random search draws each field independently from one
    ``random.Random(seed)``, skipping repeats, so a larger budget extends the same sequence.

    Args:
        space: ``Param``s from ``parse_space``.
        search: ``grid`` or ``random``.
        max_trials: the budget; 0 means every grid point (random search needs a budget).
        seed: the random search's seed.

    Returns:
        A list of ``Trial``.

    Raises:
        SweepError: unknown search, a range in a grid, random search without a budget.
    """
    if search not in SEARCHES:
        raise SweepError(f"unknown search {search!r}: one of {', '.join(SEARCHES)}")
    if max_trials < 0:
        raise SweepError(f"--max_trials={max_trials} must be >= 0")
    points = []
    if search == "grid":
        ranged = [p.name for p in space if p.distribution]
        if ranged:
            raise SweepError(f"grid search needs explicit values; {', '.join(ranged)} has a "
                             "range (use --search=random)")
        points = list(itertools.product(*(p.values for p in space)))
        points = points[:max_trials] if max_trials else points
    else:
        if not max_trials:
            raise SweepError("random search needs a budget: --max_trials=N")
        kinds = _field_types()
        distinct = math.prod(len(p.values) for p in space) if not any(
            p.distribution for p in space) else math.inf
        rng, seen = random.Random(seed), set()
        for _ in range(1000 * max_trials):
            if len(points) >= min(max_trials, distinct):
                break
            point = tuple(_sample(p, rng, kinds[p.name]) for p in space)
            if point not in seen:
                seen.add(point)
                points.append(point)
    trials = []
    for i, point in enumerate(points):
        overrides = {p.name: v for p, v in zip(space, point, strict=True)}
        trials.append(Trial(_trial_id(i, overrides), overrides))
    return trials


def trial_config(base: TrainConfig, overrides: dict) -> TrainConfig:
    """``base`` with the trial's fields replaced."""
    return dataclasses.replace(base, **overrides)


def _comparable(config_dict: dict) -> dict:
    payload = {k: v for k, v in config_dict.items() if k not in COSMETIC_FIELDS}
    return json.loads(json.dumps(payload, default=str))


def _check_resumable(path: str, record: dict) -> None:
    """Refuses to continue a sweep recorded with another space, search, seed or base config."""
    with open(path) as f:
        old = json.load(f)
    for key in ("search", "seed", "space"):
        if json.loads(json.dumps(old.get(key))) != json.loads(json.dumps(record[key])):
            raise SweepError(f"{path} records a sweep with {key} {json.dumps(old.get(key))}, "
                             f"not {json.dumps(record[key])}: use another --workdir to start "
                             "a new sweep")
    old_base, new_base = _comparable(old.get("base_config", {})), _comparable(
        record["base_config"])
    changed = sorted(k for k in set(old_base) | set(new_base)
                     if old_base.get(k) != new_base.get(k))
    if changed:
        raise SweepError(f"{path} was run with other training flags ({', '.join(changed)} "
                         "differ): use the same flags to resume, or another --workdir")


def _best(history: list, metric: str):
    values = [h["eval"][metric] for h in history
              if h.get("eval", {}).get(metric) is not None
              and math.isfinite(h["eval"][metric])]
    if not values:
        return None
    return min(values) if metric == "loss" else max(values)


def _finished_record(trial_dir: str, config: TrainConfig, metric: str, summary: dict) -> dict:
    if _comparable(summary.get("config", {})) != _comparable(dataclasses.asdict(config)):
        raise SweepError(f"{trial_dir}/{SUMMARY_FILE} was trained with another "
                         "configuration than this trial's: use another --workdir")
    history_path = os.path.join(trial_dir, HISTORY_FILE)
    history = json.load(open(history_path)) if os.path.exists(history_path) else []
    final = (summary.get("final") or {}).get("eval", {})
    best = _best(history, metric)
    return {"status": "finished", "steps": summary["steps"],
            "epochs_run": summary.get("epochs_run"), "final_eval": final,
            "best_value": best if best is not None else final.get(metric)}


def _sort_key(record: dict, metric: str):
    value = record.get("best_value")
    if record["status"] != "finished" or value is None or not math.isfinite(value):
        return (1, 0.0)
    return (0, value if metric == "loss" else -value)


def _record(base: TrainConfig, space, search: str, seed: int, max_trials: int, metric: str,
            trials: list, records: dict) -> dict:
    rows = []
    for trial in trials:
        row = {"trial_id": trial.trial_id,
               "overrides": {k: _jsonable(v) for k, v in trial.overrides.items()}}
        row.update(records.get(trial.trial_id, {"status": "pending"}))
        rows.append(row)
    return {"search": search, "seed": seed, "max_trials": max_trials, "metric": metric,
            "space": [p.to_json() for p in space], "base_config": dataclasses.asdict(base),
            "trials": rows}


def run_sweep(base: TrainConfig, sweep_dir: str, space, *, search: str = "grid",
              max_trials: int = 0, seed: int = 0) -> dict:
    """Trains every trial of the space into ``sweep_dir/<trial_id>``, then ranks them.

    Rerunning the same command skips finished trials (their ``summary.json`` exists), resumes
    an interrupted one from its checkpoints and retries failed ones; a larger ``max_trials``
    adds trials. ``sweep_dir/sweep.json`` is rewritten after every trial.

    Trials are ranked by the best validation value, over epochs, of ``base``'s
    ``early_stopping_metric`` (the metric that chose each run's best model).

    Args:
        base: the training configuration every trial starts from.
        sweep_dir: directory of the trials, ``sweep.json`` and ``trials.md``.
        space: ``Param``s from ``parse_space``.
        search: ``grid`` or ``random``.
        max_trials: the budget; 0 means every grid point.
        seed: the random search's seed.

    Returns:
        ``{"trials": [records, best first], "table": markdown, ...}`` as in ``sweep.json``.
        A record has ``trial_id``, ``overrides``, ``status`` (finished or failed),
        ``best_value``, ``final_eval``, ``steps`` or ``error``.

    Raises:
        SweepError: a bad space or budget, a weights file that cannot load, or ``sweep_dir``
            holds a different sweep.
    """
    trials = make_trials(space, search, max_trials, seed)
    metric = base.early_stopping_metric
    configs = {t.trial_id: trial_config(base, t.overrides) for t in trials}
    overrides = {t.trial_id: t.overrides for t in trials}
    for trial_id, config in configs.items():  # one line, not N failed trials
        try:
            check_train(config)
        except ValueError as err:
            swept = ", ".join(f"{k}={_cell(v)}" for k, v in overrides[trial_id].items())
            raise SweepError(f"trial {trial_id} ({swept}): {err}") from None
        try:
            loop.check_weights(config)
        except loop.TrainingError as err:
            raise SweepError(str(err)) from None
    os.makedirs(sweep_dir, exist_ok=True)
    path = os.path.join(sweep_dir, RESULTS)
    record = _record(base, space, search, seed, max_trials, metric, trials, {})
    if os.path.exists(path):
        _check_resumable(path, record)
    write_json_atomic(path, record)

    records = {}
    for n, trial in enumerate(trials, 1):
        trial_dir = os.path.join(sweep_dir, trial.trial_id)
        config = configs[trial.trial_id]
        label = ", ".join(f"{k}={_cell(v)}" for k, v in trial.overrides.items())
        done = os.path.join(trial_dir, SUMMARY_FILE)
        if os.path.exists(done):
            print(f"{trial.trial_id} ({n}/{len(trials)}) already finished: {label}", flush=True)
            records[trial.trial_id] = _finished_record(trial_dir, config, metric,
                                                       json.load(open(done)))
            continue
        verb = "resuming" if os.path.isdir(trial_dir) else "training"
        print(f"{trial.trial_id} ({n}/{len(trials)}) {verb}: {label}", flush=True)
        try:
            summary = loop.train_and_evaluate(config, trial_dir,
                                               swept=[p.name for p in space])
            records[trial.trial_id] = _finished_record(trial_dir, config, metric, summary)
        except loop.TrainingError as err:  # also a non-finite loss
            # One diverging learning rate should not end the sweep; rerunning retries it.
            logging.warning("%s failed: %s", trial.trial_id, err)
            print(f"{trial.trial_id} failed: {err}", flush=True)
            records[trial.trial_id] = {"status": "failed", "error": str(err)}
        finally:
            # Every trial builds a fresh model; free the previous one's graph and memory.
            keras.utils.clear_session()
        write_json_atomic(path, _record(base, space, search, seed, max_trials, metric, trials,
                                        records))

    results = _record(base, space, search, seed, max_trials, metric, trials, records)
    results["trials"].sort(key=lambda r: _sort_key(r, metric))
    results["table"] = markdown_table(results)
    write_json_atomic(path, results)
    with open(os.path.join(sweep_dir, TABLE), "w") as f:
        f.write(results["table"] + "\n")
    print(results["table"], flush=True)
    return results


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return "/".join(_cell(v) for v in value) or "()"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(results: dict) -> str:
    """The trials in ``results["trials"]`` order: overrides, the ranking metric, final metrics.

    Args:
        results: a ``run_sweep`` result (``space``, ``metric`` and ``trials``).

    Returns:
        A markdown table; list values are written with slashes (``512/512/512``).
    """
    names = [p["name"] for p in results["space"]]
    metric = results["metric"]
    lines = [f"| rank | trial | {' | '.join(names)} | best val {metric} | final val accuracy "
             "| final val AUC | final val loss | epochs | status |",
             "|" + "---|" * (len(names) + 8)]
    for rank, r in enumerate(results["trials"], 1):
        final = r.get("final_eval") or {}
        overrides = " | ".join(_cell(r["overrides"][n]) for n in names)
        best = "-" if r.get("best_value") is None else f"{r['best_value']:.4f}"
        finals = " | ".join("-" if final.get(k) is None else f"{final[k]:.4f}"
                            for k in ("accuracy", "auc", "loss"))
        lines.append(f"| {rank} | {r['trial_id']} | {overrides} | {best} | {finals} | "
                     f"{_cell(r.get('epochs_run'))} | {r['status']} |")
    return "\n".join(lines)


__all__ = ["Param", "SweepError", "Trial", "make_trials", "markdown_table", "parse_param",
           "parse_space", "run_sweep", "trial_config"]
