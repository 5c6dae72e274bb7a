"""The `ganneal` command line. Thin: parse, compose, call. Heavy imports happen only inside commands."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="ganneal: GAN experiments with variational annealing (Tao et al., 2019) and boundary-seeking "
    "GANs (Hjelm et al., 2018).",
)



@app.callback()
def _root() -> None:
    """ganneal: GAN experiments with variational annealing and boundary-seeking GANs."""


OVERRIDES_HELP = "Hydra overrides, e.g. divergence=rkl anneal=oa train.steps=2000 (sweeps with -m: seed=0,1,2)."


def fail(message: str, code: int = 2) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _split_resume(overrides: list[str]) -> tuple[Optional[str], list[str]]:
    resume = [o for o in overrides if o.startswith("resume=")]
    rest = [o for o in overrides if not o.startswith("resume=")]
    return (resume[-1].split("=", 1)[1] or None) if resume else None, rest


def _resume(run_dir: str, overrides: list[str]) -> int:
    from omegaconf import OmegaConf

    from gan_anneal.config import check_values
    from gan_anneal.errors import UserError
    from gan_anneal.results.rundir import RunDir
    from gan_anneal.runner import EXIT_CODES, run_training

    run = RunDir(run_dir)
    if not run.exists():
        fail(f"'{run_dir}' is not a run directory (no config.yaml there). Pass the folder `ganneal train` printed.")
    cfg = run.read_config()
    try:
        OmegaConf.set_struct(cfg, True)
        cfg.merge_with_dotlist(overrides)  # e.g. train.steps=5000 to extend a finished run
        check_values(cfg)
    except UserError as error:
        fail(str(error))
    except Exception as error:
        fail(f"cannot apply {overrides} to the run's config: {error}")
    if run.read_summary().get("status") == "done" and run.read_summary().get("steps") == cfg.train.steps:
        fail(f"{run_dir} already finished its {cfg.train.steps} steps; extend it with train.steps=<more>.", 0)
    return EXIT_CODES[run_training(cfg, run.path, resume=True)]


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    multirun: bool = typer.Option(False, "--multirun", "-m", help="Run a sweep through Hydra's launcher."),
    cfg: Optional[str] = typer.Option(None, "--cfg", "-c", help="Print the composed config (job|hydra|all) and exit."),
    resolve: bool = typer.Option(False, "--resolve", help="With --cfg: resolve interpolations."),
) -> None:
    """Train a GAN. [dim]Examples: ganneal train · ganneal train divergence=rkl anneal=oa ·
    ganneal train -m seed=0,1,2 · ganneal train resume=runs/<run>[/]"""
    from gan_anneal.config import validate_cli_overrides
    from gan_anneal.errors import UserError

    overrides = list(overrides or [])
    resume, overrides = _split_resume(overrides)
    if resume:
        raise typer.Exit(_resume(resume, overrides))
    try:
        validate_cli_overrides(overrides, multirun)
    except UserError as error:
        fail(str(error))

    from gan_anneal.hydra_app import OUTCOMES, hydra_train
    from gan_anneal.runner import EXIT_CODES

    argv = ["ganneal"]
    if multirun:
        argv.append("--multirun")
    if cfg:
        argv += ["--cfg", cfg] + (["--resolve"] if resolve else [])
    saved_argv, sys.argv = sys.argv, argv + overrides
    try:
        hydra_train()
    finally:
        sys.argv = saved_argv
    if cfg:
        return
    if multirun:
        _report_sweep(OUTCOMES)
    raise typer.Exit(max((EXIT_CODES[o] for o in OUTCOMES), default=0) if not multirun else
                     (1 if any(o != "done" for o in OUTCOMES) else 0))


def _report_sweep(outcomes: list[str]) -> None:
    from collections import Counter

    from rich.console import Console

    counts = Counter(outcomes)
    Console().print("sweep finished: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))


@app.command()
def figure(
    kind: str = typer.Argument(..., help="Which figure: kidney (Tao et al. Fig. 6: target · initial model · "
                               "with · without annealing; works for any dataset=energy_* pair)."),
    run_a: str = typer.Argument(..., help="The run WITH annealing (e.g. experiment=kidney_annealed)."),
    run_b: str = typer.Argument(..., help="The run WITHOUT annealing (e.g. experiment=kidney_plain)."),
    out: str = typer.Option("kidney.png", "--out", "-o", help="Where to write the PNG."),
    samples: int = typer.Option(3000, "--samples", help="Model samples drawn per panel."),
    seed: int = typer.Option(0, "--seed", help="Seed of the noise drawn for the panels."),
) -> None:
    """Draw a paper figure from run directories. [dim]Example: ganneal figure kidney runs/<annealed>
    runs/<plain> --out kidney.png[/]"""
    if kind != "kidney":
        fail(f"Unknown figure '{kind}'. Valid choices: kidney.")
    if samples < 1:
        fail(f"--samples must be a positive integer, got {samples}.")
    from gan_anneal.errors import UserError
    from gan_anneal.evaluate.energy_figure import energy_figure

    try:
        path = energy_figure(run_a, run_b, out, n_samples=samples, seed=seed)
    except UserError as error:
        fail(str(error))
    typer.echo(f"wrote {path}")


@app.command()
def evaluate(
    run_dir: str = typer.Argument(..., help="A run directory (the folder `ganneal train` printed)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated: is,fid,kid (or none). "
                                          "Default: the run's evaluate.metrics (is,fid)."),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", "-n", help="Generated samples (default 50000)."),
    inception_weights: Optional[str] = typer.Option(None, "--inception-weights", help="weights-inception-2015-12-"
                                                    "05-6726825d.pth (else config, $GANNEAL_INCEPTION_WEIGHTS, "
                                                    "torch's hub cache)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Feature-extraction batch (default 64)."),
    extractor: Optional[str] = typer.Option(None, "--extractor", help="inception-v3-compat (default) or "
                                            "ganneal-tiny (offline stand-in: smoke tests only)."),
    generator: Optional[str] = typer.Option(None, "--generator", help="auto (EMA when kept) | ema | raw."),
    reference_split: Optional[str] = typer.Option(None, "--reference-split", help="Default: train."),
    reference_count: Optional[int] = typer.Option(None, "--reference-count", help="Use the first N reference images."),
    is_splits: Optional[int] = typer.Option(None, "--is-splits", help="IS splits (default 10)."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="Real-statistics cache (default "
                                            "$GANNEAL_CACHE/fidelity)."),
    download_weights: bool = typer.Option(False, "--download-weights", help="Let torch-fidelity download the "
                                          "Inception weights when they are nowhere on disk (needs internet)."),
    verbose: bool = typer.Option(False, "--verbose", help="torch-fidelity's progress output."),
    probe: Optional[str] = typer.Option(None, "--probe", help="Fresh-critic divergences, e.g. js,rkl,w (BGAN)."),
    probe_steps: int = typer.Option(2000, "--probe-steps", help="Training steps of each fresh critic."),
) -> None:
    """IS / FID / KID of a run's generator through torch-fidelity, written with their protocol to
    <run>/eval.json. [dim]Examples: ganneal evaluate runs/<run> --metrics is,fid,kid --num-samples 50000 ·
    ganneal evaluate runs/<run> --inception-weights ~/weights/weights-inception-2015-12-05-6726825d.pth[/]"""
    from pathlib import Path

    from rich.console import Console

    from gan_anneal.errors import UserError
    from gan_anneal.evaluate.fidelity import resolve_options

    console = Console()
    if probe and metrics is None:  # --probe alone: only the fresh-critic measures
        metrics = "none"
    try:
        options = resolve_options(Path(run_dir), metrics=metrics, num_samples=num_samples, batch_size=batch_size,
                                  extractor=extractor, inception_weights=inception_weights,
                                  download_weights=download_weights, reference_split=reference_split,
                                  reference_count=reference_count, is_splits=is_splits, generator=generator,
                                  cache_dir=cache_dir, verbose=verbose)
        measures = [m.strip() for m in probe.split(",") if m.strip()] if probe else []
        if probe is not None and not measures:
            raise UserError("--probe needs a comma-separated list of measures, e.g. js,rkl,w.")
        if not options.metrics and not measures:
            raise UserError("--metrics none and no --probe: nothing to evaluate.")
        run_probes = None
        if measures:
            try:
                from gan_anneal.evaluate.critic_probe import run_probes
            except ModuleNotFoundError as error:
                if error.name != "gan_anneal.evaluate.critic_probe":
                    raise
                raise UserError("--probe needs gan_anneal.evaluate.critic_probe (the BGAN fresh-critic "
                                "evaluation), which this installation does not have.") from None
        if options.metrics:
            from gan_anneal.evaluate.fidelity import evaluate_run

            result = evaluate_run(run_dir, options, log=lambda m: console.print(f"[dim]{m}[/]"))
            _print_fidelity(console, result)
        if run_probes is not None:  # prints its own table and merges its numbers into eval.json
            run_probes(run_dir, measures, probe_steps)
    except UserError as error:
        fail(str(error))
    console.print(f"written: [bold]{Path(run_dir) / 'eval.json'}[/]")


def _print_fidelity(console, result: dict) -> None:
    from rich.table import Table

    p = result["protocol"]
    extractor = p["feature_extractor"]
    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["metrics"].items():
        table.add_row(key, f"{value:.6g}")
    console.print(table)
    console.print(f"{p['generator']} generator at step {p['checkpoint_step']}, {p['num_samples']} samples vs "
                  f"{p['reference']['dataset']}/{p['reference']['split']} ({p['reference']['size']} images), "
                  f"{extractor['name']}" + (" [bold yellow](stand-in: not Inception numbers)[/]"
                                            if extractor["stand_in"] else ""))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
