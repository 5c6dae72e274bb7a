"""Published numbers shipped as data, to print beside ours: `ganneal table ... --reference tao2019`.

A reference is `gan_anneal/results/reference_<name>.yaml`: `columns` (static λ, then PMA/NMA/OA) and, per
metric (IS, FID), one list per divergence. Loaded into {metric: {divergence: {column key: value}}}, with
the same column keys the collected runs use (results/collect.py: column_key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from gan_anneal.errors import UserError
from gan_anneal.results.collect import column_key

HERE = Path(__file__).resolve().parent
METRIC_NAMES = {"IS": "is", "FID": "fid"}  # the file's headings → the table's metric names


@dataclass
class Reference:
    name: str
    citation: str
    dataset: str
    columns: list[str]
    values: dict[str, dict[str, dict[str, float]]]  # metric → divergence → column → value


def available_references() -> list[str]:
    return sorted(p.stem.removeprefix("reference_") for p in HERE.glob("reference_*.yaml"))


def load_reference(name: str) -> Reference:

    path = HERE / f"reference_{name}.yaml"
    if not path.is_file():
        raise UserError(f"--reference {name}: no such published table. Valid: {', '.join(available_references())}.")
    data = OmegaConf.to_container(OmegaConf.load(path))
    columns = [column_key("static", c) if not isinstance(c, str) else column_key(c, None) for c in data["columns"]]
    values: dict[str, dict[str, dict[str, float]]] = {}
    for heading, metric in METRIC_NAMES.items():
        for divergence, row in (data.get(heading) or {}).items():
            if len(row) != len(columns):
                raise ValueError(f"{path}: {heading}.{divergence} has {len(row)} values for {len(columns)} columns")
            values.setdefault(metric, {})[divergence] = {c: float(v) for c, v in zip(columns, row)}
    return Reference(name, data.get("citation", name), data.get("dataset", "?"), columns, values)
