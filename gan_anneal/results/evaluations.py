"""Every evaluation of a run, kept: eval.json holds one entry per protocol, never replaced by another protocol's.

    {"evaluations": {KEY: {"metrics": {...}, "protocol": {...}}, ...}, "fidelity": <the latest entry>}

KEY names what makes two evaluations comparable (extractor and its weights, sample count, reference, checkpoint
and its step, generator copy, noise seed). A second evaluation under the same protocol adds its metrics to that
entry (is,fid then prc); one under another protocol gets an entry of its own. `fidelity` stays the latest entry,
so records written before evaluations were kept (only `fidelity`) read the same. Tables pick one entry per run
(`choose`): the one asked for, else the one with the most samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gan_anneal.config import comma_list
from gan_anneal.metric_names import PRIMARY_KEY
from gan_anneal.results.rundir import RunDir


def protocol_key(protocol: dict[str, Any]) -> str:
    extractor = protocol.get("feature_extractor") or {}
    reference = protocol.get("reference") or {}
    parts = [extractor.get("name"), (extractor.get("weights_sha256") or "")[:8], f"n{protocol.get('num_samples')}",
             f"{reference.get('dataset')}/{reference.get('split')}/{reference.get('size')}",
             f"{protocol.get('checkpoint', 'last')}@{protocol.get('checkpoint_step')}", protocol.get("generator"),
             f"seed{protocol.get('noise_seed')}"]
    return " ".join(str(p) for p in parts)


def all_evaluations(record: dict[str, Any]) -> dict[str, dict]:
    """{key: entry} of an eval.json record (an old record's single `fidelity` entry included)."""
    kept = dict(record.get("evaluations") or {})
    latest = record.get("fidelity")
    if latest and not kept:
        kept[protocol_key(latest.get("protocol") or {})] = latest
    return kept


def add_evaluation(record: dict[str, Any], entry: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The record with `entry` kept (merged into an entry of the same protocol), and the entry's key."""
    kept = all_evaluations(record)
    key = protocol_key(entry.get("protocol") or {})
    if key in kept:
        old = kept[key]
        metrics = {**old.get("metrics", {}), **entry.get("metrics", {})}
        asked = list(dict.fromkeys([*(old.get("protocol") or {}).get("metrics", []),
                                    *(entry.get("protocol") or {}).get("metrics", [])]))
        newer = {k: v for k, v in (entry.get("protocol") or {}).items() if v is not None}
        entry = {"metrics": metrics, "protocol": {**(old.get("protocol") or {}), **newer, "metrics": asked}}
    kept[key] = entry
    return {**record, "evaluations": kept, "fidelity": entry}, key


def choose(record: dict[str, Any], num_samples: int | None = None, extractor: str | None = None) -> dict | None:
    """The entry a table uses: among those matching `num_samples` / `extractor`, the most samples, then the latest."""
    entries = list(all_evaluations(record).values())
    latest = record.get("fidelity")

    def fits(entry: dict) -> bool:
        protocol = entry.get("protocol") or {}
        return ((num_samples is None or protocol.get("num_samples") == num_samples)
                and (extractor is None or (protocol.get("feature_extractor") or {}).get("name") == extractor))

    matching = [e for e in entries if fits(e)]
    if not matching:
        return None
    return max(matching, key=lambda e: ((e.get("protocol") or {}).get("num_samples") or 0, e == latest))


def has_metrics(path: str | Path, metrics: str | None, num_samples: int | None = None,
                extractor: str | None = None) -> bool:
    """Whether one kept evaluation of a run (of `num_samples` with `extractor`, when given) holds every metric asked
    for (a comma list; nothing asked: True)."""
    if not metrics:
        return True
    record = RunDir(path).read_evaluations()
    names = comma_list(metrics)
    wanted = [PRIMARY_KEY[m] for m in names if m in PRIMARY_KEY]
    for entry in all_evaluations(record).values():
        protocol = entry.get("protocol") or {}
        if num_samples is not None and protocol.get("num_samples") != int(num_samples):
            continue
        if extractor not in (None, "auto") and (protocol.get("feature_extractor") or {}).get("name") != extractor:
            continue
        if all(key in (entry.get("metrics") or {}) for key in wanted):
            return True
    return False
