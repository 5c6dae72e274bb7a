"""Collect run directories: every folder under a root that holds a summary.json, read into a flat record.

A record names the table cell the run belongs to (divergence × column, where the column is the static λ
or the dynamic schedule), its seed, its status and every number it has: the final metrics of summary.json
(toy metrics, pixel statistics) and the IS / FID / KID of eval.json (written by `ganneal evaluate`).
Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gan_anneal.results.evaluations import choose
from gan_anneal.results.rundir import RunDir
from gan_anneal.schema import flatten

DYNAMIC = ("pma", "nma", "oa")
MANIFEST = "sweep.yaml"  # written by `ganneal sweep` at the top of its output folder: the planned grid
JOBS_LOG = "jobs.jsonl"  # a multirun's jobs as they end: time, folder, outcome and, when refused, why


def column_key(anneal: str, lam: Any) -> str:
    """The Table 1 column of a run: the static λ as printed ("-0.1", "0", "50"), or PMA / NMA / OA.

    anneal=none (no schedule) is the λ = 0 column; any other schedule is its name in capitals."""
    anneal = str(anneal).lower()
    if anneal == "static":
        return f"{float(lam):g}"
    if anneal == "none":
        return "0"
    return anneal.upper()


def is_static_column(key: str) -> bool:
    """Whether a column key is a static λ ("-0.1", "0") rather than a schedule ("OA")."""
    return key.lstrip("-").replace(".", "").isdigit()


def column_order(key: str) -> tuple:
    """Static λ ascending, then PMA, NMA, OA, then any other schedule by name."""
    try:
        return (0, float(key), "")
    except ValueError:
        upper = key.upper()
        return (1, DYNAMIC.index(key.lower()), "") if key.lower() in DYNAMIC else (2, 0.0, upper)


@dataclass
class RunRecord:
    path: Path
    divergence: str
    column: str
    seed: int
    dataset: str
    status: str  # running | done | failed | diverged | interrupted | unknown
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    extractor_stand_in: bool = False  # IS/FID made with the offline stand-in extractor (smoke runs)
    extractor: str | None = None  # the feature extractor of eval.json's numbers
    config: dict[str, Any] = field(default_factory=dict)  # the run's settings, flattened ({'train.steps': 2000})
    steps: int | None = None  # steps done, and planned, as summary.json says
    total_steps: int | None = None
    source: str | None = None  # the ganneal commit that trained it ("<sha>+dirty" with uncommitted changes)


def source_commit(summary: dict) -> str | None:
    """The commit a run was trained at (its first start's; each later attempt must share it to count as one)."""
    sources = [summary.get("source")] + [a.get("source") for a in summary.get("attempts") or []]
    commits = {f"{s['commit'][:10]}{'+dirty' if s.get('dirty') else ''}" for s in sources if s and s.get("commit")}
    return ",".join(sorted(commits)) or None


def _chosen_evaluation(path: Path, select: dict | None) -> dict:
    """The eval.json entry a table uses for this run (results/evaluations.py: `select` asks for a protocol)."""

    return choose(RunDir(path).read_evaluations(), **(select or {})) or {}


def _evaluation_protocol(entry: dict) -> dict[str, Any]:
    """What an evaluation used (its protocol), as settings: numbers made differently never share a cell."""
    protocol = entry.get("protocol") or {}
    extractor = protocol.get("feature_extractor") or {}
    reference = protocol.get("reference") or {}
    found = {"eval.extractor": extractor.get("name"), "eval.weights_sha256": extractor.get("weights_sha256"),
             "eval.num_samples": protocol.get("num_samples"), "eval.reference_split": reference.get("split"),
             "eval.reference_size": reference.get("size"), "eval.generator": protocol.get("generator")}
    return {k: v for k, v in found.items() if v is not None}


def _fidelity_numbers(entry: dict) -> tuple[dict[str, float], bool, str | None]:
    """IS / FID / KID / precision / recall of an evaluation, whether a stand-in extractor made them, its name."""
    numbers = entry.get("metrics") or {}
    extractor = (entry.get("protocol") or {}).get("feature_extractor") or {}
    return ({k: float(v) for k, v in numbers.items() if isinstance(v, (int, float))}, bool(extractor.get("stand_in")),
            extractor.get("name"))


def read_run(path: Path, select: dict | None = None) -> RunRecord | None:
    """One run directory as a record, or None if it is not a training run (no config.yaml). `select`
    ({num_samples, extractor}) picks which kept evaluation supplies its IS / FID."""

    if not (path / "config.yaml").is_file():
        return None
    try:
        cfg = OmegaConf.to_container(OmegaConf.load(path / "config.yaml"), resolve=False)
        summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
    except Exception:  # noqa: BLE001 -- a half-written or foreign file: list it as unknown
        return RunRecord(path, "?", "?", 0, "?", "unknown")
    anneal = cfg.get("anneal") or {}
    metrics = {k: float(v) for k, v in (summary.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    evaluation = _chosen_evaluation(path, select)
    fidelity, stand_in, extractor = _fidelity_numbers(evaluation)
    metrics.update(fidelity)
    return RunRecord(
        path=path, divergence=str((cfg.get("divergence") or {}).get("name", "?")),
        column=column_key(anneal.get("name", "none"), anneal.get("lam", 0.0)), seed=int(cfg.get("seed", 0)),
        dataset=str((cfg.get("dataset") or {}).get("name", "?")), status=str(summary.get("status", "unknown")),
        metrics=metrics, error=summary.get("error"), extractor_stand_in=stand_in, extractor=extractor,
        config={**flatten(cfg), **_evaluation_protocol(evaluation)}, steps=summary.get("steps"),
        total_steps=summary.get("total_steps"), source=source_commit(summary))


def collect_runs(root: str | Path, select: dict | None = None) -> list[RunRecord]:
    """Every run under `root` (recursively: any folder with a summary.json), sorted by path; `select` as read_run."""
    root = Path(root)
    paths = sorted({p.parent for p in root.rglob("summary.json")})
    if (root / "summary.json").is_file():
        paths = sorted(set(paths) | {root})
    return [r for r in (read_run(p, select) for p in paths) if r is not None]


def planned_grid(root: str | Path) -> tuple[list[str], list[str]] | None:
    """(divergences, columns) planned by `ganneal sweep` for this folder, if it left a manifest."""

    manifest = Path(root) / MANIFEST
    if not manifest.is_file():
        return None
    data = OmegaConf.to_container(OmegaConf.load(manifest))
    return list(data.get("divergences", [])), [str(c) for c in data.get("columns", [])]


def sweep_outcomes(sweep_dir: str | Path, since: float = 0.0) -> list[str]:
    """The outcome of each job of a Hydra multirun launched at or after `since`, read from files, so that it works
    for every launcher: each job appends its outcome to JOBS_LOG as it ends (a finished job that had nothing to
    do, a refused one whose folder is removed); a job killed before it could (its `.hydra/` record, written when
    training starts, is newer than `since`) counts with its summary.json status, or "missing"."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return []
    logged = {}
    for entry in read_jobs_log(sweep_dir):
        if entry.get("time", 0) >= since - 1:
            logged[os.path.abspath(str(entry.get("job")))] = entry.get("outcome", "unknown")
    outcomes = list(logged.values())
    for hydra_dir in sorted(sweep_dir.rglob(".hydra")):
        job = hydra_dir.parent
        if hydra_dir.stat().st_mtime < since - 1 or os.path.abspath(job) in logged:
            continue
        summary = job / "summary.json"
        try:
            outcomes.append(json.loads(summary.read_text()).get("status", "unknown") if summary.is_file()
                            else "missing")
        except (OSError, ValueError):
            outcomes.append("unknown")
    return outcomes


def read_jobs_log(sweep_dir: str | Path) -> list[dict]:
    path = Path(sweep_dir) / JOBS_LOG
    entries = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def record_job(sweep_dir: str | Path, job: str | Path, outcome: str, error: str = "") -> None:
    """Note how a multirun job ended (an append of one line: safe from parallel jobs on one file system)."""

    line = json.dumps({"time": time.time(), "job": str(job), "outcome": outcome, "error": error}, ensure_ascii=False)
    with open(Path(sweep_dir) / JOBS_LOG, "a") as f:
        f.write(line + "\n")


def planned_evaluation(root: str | Path) -> bool | None:
    """Whether the sweep that made this folder evaluates IS / FID (None: no manifest)."""

    manifest = Path(root) / MANIFEST
    if not manifest.is_file():
        return None
    return bool((OmegaConf.to_container(OmegaConf.load(manifest)).get("spec") or {}).get("evaluate"))
