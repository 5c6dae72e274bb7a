"""`ganneal table`: Table 1 layout, mean ± std over seeds, best per row, failed / diverged / missing
cells, markdown / CSV / LaTeX, and the published numbers of Tao et al. (2019) shipped as data."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import invoke

from gan_anneal.results.collect import collect_runs, column_key
from gan_anneal.results.reference import load_reference
from gan_anneal.results.render import render
from gan_anneal.results.table import build_tables

VA_GAN = Path("/work/shared/reference/va-gan.md")


def fake_run(root: Path, divergence: str, anneal: str, lam: float, seed: int, status: str,
             fidelity: dict | None = None, metrics: dict | None = None) -> Path:
    name = f"{anneal}_{lam:g}" if anneal == "static" else anneal
    path = root / divergence / f"{name}_seed{seed}"
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({
        "seed": seed, "divergence": {"name": divergence}, "anneal": {"name": anneal, "lam": lam},
        "dataset": {"name": "cifar10"}}))
    (path / "summary.json").write_text(json.dumps({"status": status, "metrics": metrics or {}}))
    if fidelity is not None:
        (path / "eval.json").write_text(json.dumps({"fidelity": {
            "metrics": fidelity, "protocol": {"feature_extractor": {"stand_in": True}}}}))
    return path


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    fake_run(root, "rkl", "static", -1, 0, "done", {"is_mean": 6.0, "is_std": 0.1, "fid": 30.0})
    fake_run(root, "rkl", "static", -1, 1, "done", {"is_mean": 7.0, "is_std": 0.1, "fid": 32.0})
    fake_run(root, "rkl", "static", 0, 0, "diverged")
    fake_run(root, "rkl", "oa", 1.0, 0, "done", {"is_mean": 6.8, "is_std": 0.1, "fid": 28.0})
    fake_run(root, "wgan", "static", -1, 0, "failed")
    fake_run(root, "wgan", "static", 0, 0, "done", {"is_mean": 5.0, "fid": 40.0})
    fake_run(root, "wgan", "oa", 1.0, 0, "done")  # trained, not evaluated
    return root  # missing: (wgan, … none), every cell of jsd is absent from the data, rkl has all 3 columns


def test_collect_reads_cells_and_seeds(runs):
    records = collect_runs(runs)
    assert len(records) == 7
    by_cell = {(r.divergence, r.column, r.seed): r for r in records}
    assert by_cell[("rkl", "-1", 1)].metrics["is_mean"] == 7.0
    assert by_cell[("rkl", "OA", 0)].extractor_stand_in
    assert column_key("static", -0.01) == "-0.01" and column_key("none", None) == "0" and column_key("pma", 1) == "PMA"


def test_markdown_layout_best_and_statuses(runs):
    tables = build_tables(collect_runs(runs), ["is", "fid"])
    text = render(tables, "markdown")
    is_part, fid_part = text.split("**FID")
    assert "| model | λ=-1 | λ=0 | OA |" in is_part
    rkl = next(line for line in is_part.splitlines() if line.startswith("| RKL-GAN"))
    # mean ± std over the two seeds of λ = −1; diverged cell named; OA is the best IS of the row (6.8 > 6.5)
    assert "6.50 ± 0.71" in rkl and "diverged" in rkl and "**6.80**" in rkl
    wgan = next(line for line in is_part.splitlines() if line.startswith("| W-GAN"))
    assert "failed" in wgan and "not evaluated" in wgan and "5.00" in wgan
    fid_rkl = next(line for line in fid_part.splitlines() if line.startswith("| RKL-GAN"))
    assert "**28.0**" in fid_rkl and "31.0 ± 1.4" in fid_rkl  # lower is better for FID


def test_missing_cells_from_reference_columns_and_reference_rows(runs):
    tables = build_tables(collect_runs(runs), ["is"], reference=load_reference("tao2019"))
    text = render(tables, "markdown")
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert header.count("|") == 16  # model + 14 columns
    rkl = next(line for line in text.splitlines() if line.startswith("| RKL-GAN |"))
    assert rkl.count("missing") == 11  # 14 columns − (−1, 0, OA)
    ref = next(line for line in text.splitlines() if line.startswith("| RKL-GAN (tao2019)"))
    assert "**7.08**" in ref and "6.24" in ref  # the slide's bold: NMA is RKL's best IS


def test_csv_is_long_and_parsable(runs):
    rows = list(csv.DictReader(io.StringIO(render(build_tables(collect_runs(runs), ["is", "fid"]), "csv"))))
    cell = next(r for r in rows if r["metric"] == "is" and r["divergence"] == "rkl" and r["column"] == "-1")
    assert float(cell["mean"]) == pytest.approx(6.5) and float(cell["std"]) == pytest.approx(0.7071, abs=1e-4)
    assert cell["n"] == "2" and cell["status"] == "ok"
    statuses = {(r["divergence"], r["column"]): r["status"] for r in rows if r["metric"] == "fid"}
    assert statuses[("rkl", "0")] == "diverged" and statuses[("wgan", "-1")] == "failed"
    assert statuses[("wgan", "OA")] == "not evaluated"
    best = [r for r in rows if r["metric"] == "fid" and r["divergence"] == "rkl" and r["best"] == "1"]
    assert [b["column"] for b in best] == ["OA"]


def test_latex_bold_and_pm(runs):
    text = render(build_tables(collect_runs(runs), ["is"]), "latex")
    assert r"\begin{tabular}{lrrr}" in text and r"\textbf{6.80}" in text and r"6.50 $\pm$ 0.71" in text
    assert r"\textit{diverged}" in text and r"\textit{failed}" in text and text.count(r"\end{tabular}") == 1


def test_toy_metrics_default_when_not_evaluated(tmp_path):
    root = tmp_path / "toy"
    for lam, modes in ((-1, 8), (0, 6), (1, 3)):
        fake_run(root, "jsd", "static", lam, 0, "done", metrics={"modes_covered": modes, "hq_fraction": 0.9,
                                                                   "kl_target_model": 0.1 * (lam + 2)})
    from gan_anneal.results.table import default_metrics

    records = collect_runs(root)
    assert default_metrics(records) == ["modes_covered", "hq_fraction", "kl_target_model"]
    text = render(build_tables(records, default_metrics(records)), "markdown")
    assert "**8.0**" in text and "**0.100**" in text  # most modes; lowest KL


def test_table_cli_formats_and_errors(runs, tmp_path):

    for fmt in ("rich", "markdown", "csv", "latex"):
        result = invoke("table", str(runs), "--format", fmt, "--reference", "tao2019")
        assert result.returncode == 0, result.output
        assert "6.5" in result.output
    out = tmp_path / "t.md"
    assert invoke("table", str(runs), "-f", "markdown", "--out", str(out)).returncode == 0
    assert "RKL-GAN" in out.read_text()
    bad = invoke("table", str(runs), "--reference", "nobody2020")
    assert bad.returncode == 2 and "tao2019" in bad.output
    assert invoke("table", str(tmp_path / "nowhere")).returncode == 2
    assert invoke("table", str(runs), "--format", "html").returncode == 2


def test_reference_matches_va_gan_digest():
    ref = load_reference("tao2019")
    assert ref.columns == ["-50", "-10", "-1", "-0.1", "-0.01", "0", "0.01", "0.1", "1", "10", "50", "PMA", "NMA", "OA"]
    assert ref.values["is"]["rkl"]["NMA"] == 7.08 and ref.values["fid"]["jsd"]["-1"] == 35.19
    assert ref.values["fid"]["wgan"]["0.01"] == 39.43 and ref.values["is"]["wgan"]["PMA"] == 6.95
    if not VA_GAN.is_file():
        pytest.skip(f"{VA_GAN} not on this machine")
    block = re.search(r"```yaml\n(# CIFAR-10, Tao et al\. 2019.*?)```", VA_GAN.read_text(), re.DOTALL).group(1)
    digest = yaml.safe_load(block)
    assert [column_key("static", c) if not isinstance(c, str) else c for c in digest["columns"]] == ref.columns
    for heading, metric in (("IS", "is"), ("FID", "fid")):
        for divergence, row in digest[heading].items():
            assert [ref.values[metric][divergence][c] for c in ref.columns] == row


def test_manifest_alone_gives_the_empty_gpu_layout(tmp_path):
    from gan_anneal.experiments.sweep import load_sweep, plan_jobs, write_manifest

    spec = load_sweep("cifar10_table")
    write_manifest(spec, tmp_path, plan_jobs(spec, tmp_path), [])
    result = invoke("table", str(tmp_path), "-f", "markdown", "--reference", "tao2019", "--digits", "3")
    assert result.returncode == 0, result.output
    assert "**Inception score" in result.output and "**FID" in result.output
    ours = [line for line in result.output.splitlines() if line.startswith(("| RKL-GAN |", "| JSD-GAN |", "| W-GAN |"))]
    assert len(ours) == 6 and all(line.count("missing") == 14 for line in ours)
    assert "**7.080**" in result.output  # --digits applies to the reference rows too


def test_a_table_says_when_its_runs_come_from_different_source_commits(runs):
    for path, commit in ((runs / "rkl" / "static_-1_seed0", "a" * 40), (runs / "rkl" / "static_-1_seed1", "b" * 40)):
        summary = json.loads((path / "summary.json").read_text())
        (path / "summary.json").write_text(json.dumps({**summary, "source": {"commit": commit, "dirty": False}}))
    text = render(build_tables(collect_runs(runs), ["fid"]), "markdown")
    assert "2 source commits (aaaaaaaaaa, bbbbbbbbbb)" in " ".join(text.split())


def test_a_column_against_lambda_zero_gets_a_welch_interval_unpaired_and_a_reading(tmp_path):
    from scipy import stats

    from gan_anneal.metric_names import METRICS
    from gan_anneal.results.compare import compare

    root = tmp_path / "runs"
    for seed, (base, oa, nma) in enumerate([(40.0, 30.0, 41.0), (44.0, 31.0, 39.0), (42.0, 29.0, 44.0)]):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": base})
        fake_run(root, "jsd", "oa", 1.0, seed, "done", {"fid": oa})
        fake_run(root, "jsd", "nma", 1.0, seed, "done", {"fid": nma})
    found = {d.column: d for d in compare(collect_runs(root), METRICS["fid"], paired=False)}
    oa = found["OA"]
    assert oa.difference == pytest.approx(-12.0)
    se = ((4 / 3) + (1 / 3)) ** 0.5  # sample variances 4 and 1 over 3 seeds each
    dof = (4 / 3 + 1 / 3) ** 2 / ((4 / 3) ** 2 / 2 + (1 / 3) ** 2 / 2)
    assert oa.high == pytest.approx(-12.0 + stats.t.ppf(0.975, dof) * se)
    assert oa.reading(METRICS["fid"]) == "better" and found["NMA"].reading(METRICS["fid"]) == "within noise"

    result = invoke("table", str(root), "--metric", "fid", "--against", "0", "--format", "markdown")
    assert result.returncode == 0 and "| jsd | OA | 3 paired | -12.0 |" in result.output, result.output
    unpaired = invoke("table", str(root), "--metric", "fid", "--against", "0", "--unpaired",
                      "--format", "markdown")
    assert unpaired.returncode == 0 and "| jsd | OA | 3 vs 3 | -12.0 |" in unpaired.output, unpaired.output


def test_columns_that_ran_the_same_seeds_are_compared_seed_by_seed(tmp_path):
    """Paired by seed, against scipy's paired t test: a small effect that the seeds' spread hides from Welch."""
    from scipy import stats

    from gan_anneal.metric_names import METRICS
    from gan_anneal.results.compare import compare

    root = tmp_path / "runs"
    base, pma = [53.4, 32.6, 55.4, 49.3], [51.4, 31.7, 49.2, 42.6]  # every seed a little better, seeds far apart
    for seed, (b, p) in enumerate(zip(base, pma)):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": b})
        fake_run(root, "jsd", "pma", 1.0, seed, "done", {"fid": p})
    fake_run(root, "jsd", "pma", 1.0, 7, "done", {"fid": 10.0})  # a seed λ = 0 never ran: left out of the pairs
    paired = compare(collect_runs(root), METRICS["fid"])[0]
    reference = stats.ttest_rel(pma, base).confidence_interval(0.95)
    assert paired.paired and paired.n == 4 and paired.seeds() == "4 paired"
    assert (paired.low, paired.high) == (pytest.approx(reference.low), pytest.approx(reference.high))
    assert paired.difference == pytest.approx(sum(p - b for p, b in zip(pma, base)) / 4)
    welch = compare(collect_runs(root), METRICS["fid"], paired=False)[0]
    assert welch.n == 5 and welch.high - welch.low > 3 * (paired.high - paired.low)


def test_a_column_sharing_fewer_than_two_seeds_with_the_baseline_falls_back_to_welch(tmp_path):
    from gan_anneal.metric_names import METRICS
    from gan_anneal.results.compare import compare

    root = tmp_path / "runs"
    for seed in (0, 1):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": 40.0 + seed})
    for seed in (1, 2, 3):
        fake_run(root, "jsd", "oa", 1.0, seed, "done", {"fid": 30.0 + seed})
    found = compare(collect_runs(root), METRICS["fid"])[0]
    assert not found.paired and found.seeds() == "3 vs 2" and found.low is not None


def test_a_one_seed_column_is_compared_with_the_baseline_at_its_own_seed_not_with_the_baseline_mean(tmp_path):
    """A static cell at seed 0 against λ = 0 at seeds 0-3: the seed-0 difference, with no interval."""
    from gan_anneal.metric_names import METRICS
    from gan_anneal.results.compare import compare

    root = tmp_path / "runs"
    for seed, fid in enumerate([62.4, 45.3, 55.9, 43.7]):  # RKL's λ = 0: seed 0 is the worst
        fake_run(root, "rkl", "static", 0, seed, "done", {"fid": fid})
    fake_run(root, "rkl", "static", 10.0, 0, "done", {"fid": 61.9})
    found = compare(collect_runs(root), METRICS["fid"])[0]
    assert found.paired and found.seeds() == "1 paired" and found.low is None
    assert found.difference == pytest.approx(61.9 - 62.4)  # not 61.9 − 51.8, the mean over seeds
    assert found.reading(METRICS["fid"]) == "too few seeds for an interval"
    unpaired = compare(collect_runs(root), METRICS["fid"], paired=False)[0]
    assert unpaired.seeds() == "1 vs 4" and unpaired.difference == pytest.approx(61.9 - 51.825)


def test_a_one_seed_column_gets_an_interval_from_the_run_noise_of_the_columns_that_ran_every_seed(tmp_path):
    """With λ = 0 and one other column at seeds 0-3, one run's noise is half the variance of their per-seed
    differences (a closed form of the block design), so a one-seed difference's interval is d ± t(3)·sd(diffs)."""
    from scipy import stats

    from gan_anneal.metric_names import METRICS
    from gan_anneal.results.compare import compare

    root = tmp_path / "runs"
    base, pma = [27.0, 22.4, 24.8, 20.6], [27.8, 21.3, 23.6, 18.8]
    for seed, (b, p) in enumerate(zip(base, pma)):
        fake_run(root, "rkl", "static", 0, seed, "done", {"fid": b})
        fake_run(root, "rkl", "pma", 1.0, seed, "done", {"fid": p})
    fake_run(root, "rkl", "static", 10.0, 0, "done", {"fid": 30.0})
    found = {d.column: d for d in compare(collect_runs(root), METRICS["fid"])}
    static = found["10"]
    half = stats.t.ppf(0.975, 3) * stats.tstd([p - b for p, b in zip(pma, base)])
    assert static.difference == pytest.approx(3.0) and static.noise_dof == 3
    assert (static.low, static.high) == (pytest.approx(3.0 - half), pytest.approx(3.0 + half))
    assert static.seeds() == "1 paired, row's noise (3 dof)"
    assert half == pytest.approx(3.58, abs=0.01) and static.reading(METRICS["fid"]) == "within noise"
    assert found["PMA"].noise_dof is None  # a column with its own seeds keeps its own paired interval


def test_a_verdict_says_how_it_was_computed_once_above_every_metric(tmp_path):
    root = tmp_path / "runs"
    for seed, (base, pma) in enumerate([(24.0, 23.0), (26.0, 22.0), (22.0, 24.0)]):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": base, "is_mean": 6.0 + seed / 10})
        fake_run(root, "jsd", "pma", 1.0, seed, "done", {"fid": pma, "is_mean": 6.1 + seed / 10})
    result = invoke("table", str(root), "--metric", "fid", "--metric", "is", "--against", "0", "--reference",
                    "tao2019", "-f", "markdown")
    assert result.returncode == 0, result.output
    text = " ".join(result.output.split())
    assert text.count("95% t interval") == 1 and text.count("one in twenty") == 1
    assert text.count("tao2019 share: the published relative change") == 1
    assert text.index("95% t interval") < text.index("fid difference") < text.index("is difference")


def test_plot_draws_each_difference_its_interval_and_the_share_a_panel_a_metric(tmp_path):
    """The figure's marks sit where the printed verdict puts them: the point at the difference, the bar's ends at the
    interval (dashed for a one-seed column's), the cross at the share."""
    from gan_anneal.metric_names import METRICS
    from gan_anneal.results.compare import verdict
    from gan_anneal.results.reference import load_reference
    from gan_anneal.results.verdict_figure import verdict_figure

    root = tmp_path / "runs"
    for seed, (base, pma, oa) in enumerate([(24.0, 23.0, 14.0), (26.0, 22.0, 17.0), (22.0, 24.0, 15.0)]):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": base, "is_mean": 6.0 + seed / 10})
        fake_run(root, "jsd", "pma", 1.0, seed, "done", {"fid": pma, "is_mean": 6.1 + seed / 10})
        fake_run(root, "jsd", "oa", 1.0, seed, "done", {"fid": oa, "is_mean": 6.3})
    fake_run(root, "jsd", "static", 1.0, 0, "done", {"fid": 30.0, "is_mean": 5.0})
    baseline, _, panels = verdict(collect_runs(root), [METRICS["fid"], METRICS["is"]], "0",
                                  reference=load_reference("tao2019"))
    fig = verdict_figure(panels, baseline, "tao2019")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    found = panels[0][2]
    lines = [line for line in fig.axes[0].lines if len(line.get_xdata()) == 2 and line.get_color() == "tab:blue"]
    assert [tuple(line.get_xdata()) for line in lines] == [(pytest.approx(d.low), pytest.approx(d.high))
                                                           for d in found]
    assert [line.get_linestyle() for line in lines] == ["--" if d.noise_dof else "-" for d in found]
    assert found[0].column == "1" and found[0].noise_dof is not None
    points = [line.get_xdata()[0] for line in fig.axes[0].lines if line.get_marker() == "o"]
    crosses = [line.get_xdata()[0] for line in fig.axes[0].lines if line.get_marker() == "x" and len(line.get_xdata())]
    assert points == [pytest.approx(d.difference) for d in found]
    assert crosses == [pytest.approx(d.share) for d in found if d.share is not None] and crosses

    out = tmp_path / "verdict.png"
    result = invoke("table", str(root), "--metric", "fid", "--against", "0", "--plot", str(out))
    assert result.returncode == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", result.output
    for args, says in ((["--plot", str(out)], "add --against 0"),
                       (["--against", "0", "--plot", str(tmp_path / "v.txt")], "--plot")):
        refused = invoke("table", str(root), *args)
        assert refused.returncode == 2 and says in refused.output and "Traceback" not in refused.output


def test_the_row_noise_is_the_residual_of_a_seed_plus_column_least_squares_fit():
    """Against numpy's least squares on indicator columns (an independent fit): residual sum of squares over
    (columns − 1)(seeds − 1); a column missing a seed stays out of the block."""
    import numpy as np

    from gan_anneal.results.compare import run_noise

    rng = np.random.default_rng(0)
    values = rng.normal(25, 3, size=(4, 5)) + rng.normal(0, 4, size=5)  # 4 columns × 5 seeds, a seed effect
    columns = {c: dict(enumerate(row)) for c, row in zip(["0", "PMA", "NMA", "OA"], values.tolist())}
    columns["10"] = {0: 31.0}  # one seed: not in the block
    design = np.array([[1.0] + [float(c == i) for i in range(1, 4)] + [float(s == j) for j in range(1, 5)]
                       for c in range(4) for s in range(5)])
    _, rss, *_ = np.linalg.lstsq(design, values.reshape(-1), rcond=None)
    variance, dof = run_noise(columns, "0")
    assert dof == 3 * 4 and variance == pytest.approx(rss[0] / 12)
    assert run_noise({"0": {0: 1.0, 1: 2.0}, "10": {0: 3.0}}, "0") is None  # no second column with every seed


def test_the_row_noise_takes_the_largest_block_and_refuses_a_block_without_noise():
    """A λ = 0 seed no other column ran, or a column still at two seeds, must not shrink the block to nothing; a
    block that fits seed + column exactly (a saturated metric) gives no interval rather than a certain one."""
    from gan_anneal.results.compare import run_noise

    full = {"0": {0: 24.0, 1: 27.0, 2: 23.0, 3: 22.0}, "PMA": {0: 23.0, 1: 21.0, 2: 24.0, 3: 20.0},
            "NMA": {0: 24.5, 1: 22.0, 2: 29.0, 3: 24.0}}
    expected = run_noise(full, "0")
    assert expected[1] == 2 * 3
    extra = {**full, "0": {**full["0"], 4: 30.0}}  # a fifth λ = 0 seed, no other column ran it
    assert run_noise(extra, "0") == (pytest.approx(expected[0]), 6)
    partial = {**full, "OA": {0: 22.0, 2: 25.0}}  # a column part-way: the 3 × 4 block beats the 4 × 2 one
    assert run_noise(partial, "0") == (pytest.approx(expected[0]), 6)
    assert run_noise({"0": {0: 8.0, 1: 8.0, 2: 8.0}, "OA": {0: 8.0, 1: 8.0, 2: 8.0}}, "0") is None
    assert run_noise({"0": {0: 1.0, 1: 5.0}, "OA": {0: 2.0, 1: 6.0}}, "0") is None  # additive exactly: no noise seen


def test_against_with_a_reference_gives_the_published_effect_scaled_to_our_baseline(tmp_path):
    """The share: the paper's relative change of a column, applied to our baseline; read against our interval."""
    published = yaml.safe_load((Path(load_reference.__code__.co_filename).parent / "reference_tao2019.yaml").read_text())
    columns = [str(c).upper() if isinstance(c, str) else f"{float(c):g}" for c in published["columns"]]
    fid = dict(zip(columns, published["FID"]["jsd"]))
    root = tmp_path / "runs"
    for seed, (base, pma, oa) in enumerate([(24.0, 23.0, 14.0), (26.0, 22.0, 17.0), (22.0, 24.0, 15.0)]):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": base})
        fake_run(root, "jsd", "pma", 1.0, seed, "done", {"fid": pma})
        fake_run(root, "jsd", "oa", 1.0, seed, "done", {"fid": oa})
    result = invoke("table", str(root), "--metric", "fid", "--against", "0", "--reference", "tao2019", "-f", "markdown")
    assert result.returncode == 0, result.output
    rows = {line.split("|")[2].strip(): [x.strip() for x in line.split("|")[3:-1]]
            for line in result.output.splitlines() if line.startswith("| jsd |")}
    for column in ("PMA", "OA"):
        assert rows[column][3] == f"{24.0 * (fid[column] - fid['0']) / fid['0']:+.1f}"
    assert rows["PMA"][1] == "-1.0" and rows["PMA"][4] == "within noise; cannot rule out tao2019's share"
    assert rows["OA"][1] == "-8.7" and rows["OA"][4] == "better"
    plain = invoke("table", str(root), "--metric", "fid", "--against", "0", "-f", "markdown")
    assert "share" not in plain.output and "| jsd | PMA | 3 paired | -1.0 |" in plain.output


@pytest.mark.parametrize("args, needle", [
    (["--unpaired"], "--unpaired changes how --against"),
    (["--digits", "-1"], "--digits"),
    (["--extractor", "inception-v3-compat"], "Kept: ganneal-mnist on 500 samples"),
    (["--eval-samples", "123"], "Kept: ganneal-mnist on 500 samples"),
])
def test_table_options_that_cannot_apply_exit_2_saying_why(tmp_path, args, needle):
    path = fake_run(tmp_path / "runs", "jsd", "static", 0, 0, "done")
    (path / "eval.json").write_text(json.dumps({"fidelity": {"metrics": {"fid": 30.0}, "protocol": {
        "num_samples": 500, "feature_extractor": {"name": "ganneal-mnist"}}}}))
    result = invoke("table", str(tmp_path / "runs"), *args)
    assert result.returncode == 2 and needle in result.output, result.output
    assert "Traceback" not in result.output


def test_a_cell_with_fewer_seeds_than_the_table_says_how_many_and_notes_stand_apart(tmp_path):
    root = tmp_path / "runs"
    for seed in range(4):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": 20.0 + seed})
    for seed in range(2):  # a column half-way through its sweep
        fake_run(root, "jsd", "pma", 1.0, seed, "done", {"fid": 20.0 + 2 * seed})
    fake_run(root, "jsd", "static", 1.0, 0, "done", {"fid": 25.0})
    lines = invoke("table", str(root), "--metric", "fid", "-f", "markdown").output.splitlines()
    row = next(line for line in lines if line.startswith("| JSD-GAN"))
    assert [x.strip() for x in row.split("|")[2:5]] == ["21.5 ± 1.3", "25.0", "**21.0 ± 1.4 (n=2)**"]
    note = next(i for i, line in enumerate(lines) if line.startswith("_"))
    assert lines[note - 1] == ""  # not read as one more row of the table


def test_columns_cuts_the_table_and_the_published_row_to_those_columns(tmp_path):
    root = tmp_path / "runs"
    for seed in range(2):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": 24.0 + seed})
        fake_run(root, "jsd", "oa", 1.0, seed, "done", {"fid": 22.0 + seed})
    fake_run(root, "jsd", "static", -1.0, 0, "done", {"fid": 30.0})
    result = invoke("table", str(root), "--metric", "fid", "-f", "markdown", "--columns", "0,oa", "--reference",
                    "tao2019", "--against", "0")
    assert result.returncode == 0, result.output
    assert "| model | λ=0 | OA |" in result.output and "λ=-1" not in result.output
    assert "| JSD-GAN (tao2019) | 37.4 | **29.1** |" in result.output  # the published row, same two columns
    assert "| jsd | OA | 2 paired | -2.0 |" in result.output and "| jsd | -1 |" not in result.output
    absent = invoke("table", str(root), "--columns", "0,PMA")
    assert absent.returncode == 2 and "no run here is in column PMA. Columns present: -1, 0, OA" in absent.output


def test_seed_sets_one_seed_columns_beside_the_same_seed_of_the_others(tmp_path):
    root = tmp_path / "runs"
    for seed, fid in enumerate([62.4, 45.3, 55.9, 43.7]):
        fake_run(root, "rkl", "static", 0, seed, "done", {"fid": fid})
    fake_run(root, "rkl", "static", 10.0, 0, "done", {"fid": 61.9})
    every = invoke("table", str(root), "--metric", "fid", "-f", "markdown")
    assert "51.8 ± 8.9" in every.output, every.output  # λ = 0 is its mean over four seeds
    one = invoke("table", str(root), "--metric", "fid", "-f", "markdown", "--seed", "0")
    row = next(line for line in one.output.splitlines() if line.startswith("| RKL-GAN"))
    assert one.returncode == 0 and row.split("|")[2:4] == [" 62.4 ", " **61.9** "], one.output
    absent = invoke("table", str(root), "--seed", "9")
    assert absent.returncode == 2 and "Seeds present: 0, 1, 2, 3" in absent.output, absent.output


def test_against_takes_a_column_as_typed_and_refuses_one_that_is_absent(tmp_path):

    root = tmp_path / "runs"
    for seed in (0, 1):
        fake_run(root, "jsd", "static", 0, seed, "done", {"fid": 40.0 + seed})
        fake_run(root, "jsd", "oa", 1.0, seed, "done", {"fid": 30.0 + seed})
    shown = invoke("table", str(root), "--metric", "fid", "--against", "0.0", "-f", "markdown")
    assert shown.returncode == 0 and "| jsd | OA | 2 paired | -10.0 |" in shown.output
    absent = invoke("table", str(root), "--metric", "fid", "--against", "pma")
    assert absent.returncode == 2 and "no run here is in column PMA" in " ".join(absent.output.split())
    out = tmp_path / "t.csv"
    invoke("table", str(root), "--metric", "fid", "--against", "0", "-f", "csv", "-o", str(out))
    assert "Welch" not in out.read_text()  # the CSV stays machine-readable
