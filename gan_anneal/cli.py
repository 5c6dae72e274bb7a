"""The `ganneal` command line. Thin: parse, compose, call.

Every command imports what it uses inside its body: that is the reason for this module's function-level
imports, so that `ganneal --help` and bad input answer without loading torch (tests/test_layers.py checks).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from gan_anneal.config import comma_list
from gan_anneal.defaults import shipped

app = typer.Typer(
    add_completion=False,
    rich_markup_mode="rich",
    help="ganneal: GAN experiments with variational annealing (Tao et al., 2019) and boundary-seeking "
    "GANs (Hjelm et al., 2018).",
)


def _version_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        ours = version("ganneal")
    except PackageNotFoundError:
        ours = "(not installed)"
    cuda = (f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s) visible" if torch.cuda.is_available()
            else f"CUDA {torch.version.cuda or 'not built'}, no GPU visible")
    return f"ganneal {ours} · torch {torch.__version__} · {cuda} · Python {sys.version.split()[0]}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version_line())
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the versions of ganneal, torch and CUDA, and exit."),
) -> None:
    """ganneal: GAN experiments with variational annealing and boundary-seeking GANs."""
    import shlex

    # the command as typed, for each run's summary.json (Hydra rewrites sys.argv; launcher workers inherit this)
    os.environ["GANNEAL_COMMAND"] = " ".join(shlex.quote(a) for a in ["ganneal", *sys.argv[1:]])
    if ctx.invoked_subcommand is None:  # bare `ganneal`: the help, and success
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


OVERRIDES_HELP = "Hydra overrides, e.g. divergence=rkl anneal=oa train.steps=2000 (sweeps with -m: seed=0,1,2)."


def fail(message: str, code: int = 2) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _expand_device(overrides: list[str]) -> list[str]:
    """`device=cuda:K` is short for the cuda group on GPU K (`device=cuda device.name=cuda:K`)."""
    expanded = []
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "device" and value.startswith("cuda:"):
            expanded += ["device=cuda", f"device.name={value}"]
        else:
            expanded.append(override)
    return expanded


def _expand_resume(overrides: list[str], multirun: bool) -> list[str]:
    """`resume=DIR` is short for DIR's own overrides (DIR/.hydra/overrides.yaml) with hydra.run.dir=DIR, followed
    by the overrides given now; the result goes through Hydra like any command (so --cfg shows it)."""
    from omegaconf import OmegaConf

    given = [o for o in overrides if o.split("=", 1)[0] == "resume"]
    if not given:
        return overrides
    run_dir = given[-1].split("=", 1)[1].strip("'\"")
    if not run_dir:
        fail("resume= was given an empty value (an unset variable in a job script?). Pass the run directory: "
             "ganneal train resume=runs/<run>.")
    if multirun:
        fail("resume=DIR names one run directory; -m would start several jobs in it. Re-run the multirun's own "
             "command (same hydra.sweep.dir): finished jobs end at once and interrupted ones resume.")
    path = Path(run_dir)
    stored = path / ".hydra" / "overrides.yaml"
    if not (path / "config.yaml").is_file():
        fail(f"'{run_dir}' is not a run directory (no config.yaml there). Pass the folder `ganneal train` printed.")
    if not stored.is_file():
        fail(f"'{run_dir}' was not started by `ganneal train` (no .hydra/overrides.yaml), so its command is not "
             "known here. Re-run the command that made it (e.g. `ganneal sweep NAME` for a sweep's runs).")
    original = [o for o in OmegaConf.to_container(OmegaConf.load(stored)) if not o.startswith("hydra.run.dir=")]
    rest = [o for o in overrides if o.split("=", 1)[0] != "resume"]
    pinned = [] if any(o.startswith("hydra.run.dir=") for o in rest) else [f"hydra.run.dir={run_dir}"]
    return [*original, *pinned, *rest]


def _groups_epilog() -> str:
    from gan_anneal.config import default_choices, group_options

    defaults = default_choices()
    lines = [f"{group}: " + ", ".join(f"{o}*" if o == defaults.get(group) else o for o, _ in options)
             for group, options in group_options().items()]
    return ("Config groups (* the default; `ganneal configs` describes each option):\n\n" + "\n\n".join(lines)
            + "\n\nHydra's own flags: --info TOPIC, --hydra-help.")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, epilog=_groups_epilog())
def train(
    overrides: Optional[List[str]] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    multirun: bool = typer.Option(False, "--multirun", "-m", help="Run a sweep through Hydra's launcher."),
    cfg: Optional[str] = typer.Option(None, "--cfg", "-c", help="Print the composed config (job|hydra|all) and exit."),
    resolve: bool = typer.Option(False, "--resolve", help="With --cfg: resolve interpolations."),
) -> None:
    """Train a GAN. [dim]Examples: ganneal train · ganneal train divergence=rkl anneal=oa ·
    ganneal train -m seed=0,1,2 · ganneal train resume=runs/<run>[/]"""
    from gan_anneal.config import force_swept_group_keys, swept_keys, validate_cli_overrides
    from gan_anneal.errors import UserError

    if cfg is not None and cfg not in ("job", "hydra", "all"):
        fail(f"--cfg {cfg}: valid are job (the run's config), hydra (Hydra's own) and all.")
    overrides, hydra_flags = _hydra_flags(list(overrides or []))
    if "--hydra-help" in hydra_flags:
        _call_hydra(["ganneal", "--hydra-help"])
        return
    overrides = _expand_device(_expand_resume(overrides, multirun))
    try:
        first = validate_cli_overrides(overrides, multirun)
    except UserError as error:
        fail(str(error))
    if multirun:
        overrides = force_swept_group_keys(overrides)
        from gan_anneal.hydra_app import SWEPT_ENV

        os.environ[SWEPT_ENV] = ",".join(swept_keys(overrides))  # names the job folders (hydra_app.job_folder_name)
    if multirun and not cfg:  # pin the sweep dir, so the jobs' summaries can be read back from it
        overrides, sweep_dir = _pin_sweep_dir(overrides, first)
    import time

    started = time.time()

    from gan_anneal.hydra_app import OUTCOMES
    from gan_anneal.runner import EXIT_CODES

    OUTCOMES.clear()  # this command's jobs only (an earlier call in the same process left its own)

    existed = _deepest_existing(Path(str(first.hydra.run.dir)))
    argv = ["ganneal"]
    if multirun:
        argv.append("--multirun")
    if cfg:
        argv += ["--cfg", cfg] + (["--resolve"] if resolve else [])
    argv += hydra_flags
    try:
        _call_hydra(argv + overrides)
    except KeyboardInterrupt as stop:  # a job checkpointed and stopped (hydra_app.SweepInterrupted), or Ctrl-C
        raise typer.Exit(EXIT_CODES.get(getattr(stop, "outcome", "interrupted"), 130)) from None
    if cfg or hydra_flags:
        return
    if multirun:
        raise typer.Exit(_sweep_exit_code(sweep_dir, started))
    if "bad-input" in OUTCOMES:
        _remove_created_parents(Path(str(first.hydra.run.dir)), existed)
    raise typer.Exit(max((EXIT_CODES[o] for o in OUTCOMES), default=0))


def _sweep_exit_code(sweep_dir, started: float) -> int:
    """A multirun's jobs ran in other processes (joblib, submitit): their summary.json files say how they ended."""
    from gan_anneal.results.collect import sweep_outcomes
    from gan_anneal.results.slurm_jobs import ON_THE_CLUSTER

    outcomes = sweep_outcomes(sweep_dir, since=started)
    _report_sweep(outcomes)
    typer.echo(f"sweep directory: {sweep_dir}")
    if outcomes and all(o == "bad-input" for o in outcomes):
        return 2
    return 1 if any(o not in ("done", *ON_THE_CLUSTER) for o in outcomes) else 0


def _deepest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _remove_created_parents(run_dir: Path, existed: Path) -> None:
    """A refused run's folder is removed (RunDir.discard_unstarted); so are the empty folders above it that this
    command created (hydra.run.dir=a/b/c leaves no a/b)."""
    for parent in run_dir.absolute().parents:
        if parent == existed or existed not in parent.parents:
            return
        try:
            parent.rmdir()  # only when empty
        except OSError:
            return


INFO_TOPICS = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
TRAIN_FLAGS = ("-m/--multirun, --cfg job|hydra|all, --resolve, --info TOPIC (" + ", ".join(INFO_TOPICS) + "), "
               "--hydra-help, --help")


def _hydra_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """Split Hydra's own flags that `train` passes on (--info [topic], --hydra-help) from the overrides; any
    other word that starts with '-' is refused here, in one line, rather than by Hydra's override lexer."""
    overrides, flags = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--hydra-help":
            flags.append(arg)
        elif arg == "--info" or arg.startswith("--info="):
            topic = arg.split("=", 1)[1] if "=" in arg else None
            if topic is None and i + 1 < len(args) and "=" not in args[i + 1] and not args[i + 1].startswith("-"):
                topic, i = args[i + 1], i + 1
            if topic is not None and topic not in INFO_TOPICS:
                fail(f"--info {topic}: valid topics are {', '.join(INFO_TOPICS)}.")
            flags += ["--info"] + ([topic] if topic else [])
        elif arg.startswith("-"):  # no Hydra override starts with '-' (~key, +key and key=-1 do not)
            fail(f"`ganneal train` has no option {arg}. It takes Hydra overrides (key=value, ~key, +key=value) "
                 f"and {TRAIN_FLAGS}.")
        else:
            overrides.append(arg)
        i += 1
    return overrides, flags


def _call_hydra(argv: list[str]) -> None:
    from gan_anneal.hydra_app import hydra_train

    saved_argv, sys.argv = sys.argv, argv
    try:
        hydra_train()
    finally:
        sys.argv = saved_argv


def _pin_sweep_dir(overrides: list[str], first) -> tuple[list[str], str]:
    """The sweep dir the user chose, or one named by the command itself (runs/multirun/<its overrides>), so that
    re-typing the same command continues the same sweep: finished jobs end at once, interrupted ones resume."""
    import re

    given = [o.split("=", 1)[1] for o in overrides if o.startswith("hydra.sweep.dir=")]
    if given:
        return overrides, given[-1].strip("'\"")
    sweep_dir = str(first.hydra.sweep.dir)
    if re.fullmatch(r"runs/multirun/\d{4}-\d{2}-\d{2}/[\d-]+", sweep_dir):  # the shipped default: name it
        sweep_dir = f"runs/multirun/{command_folder_name(overrides)}"
    return [*overrides, f"hydra.sweep.dir='{sweep_dir}'"], sweep_dir


def command_folder_name(overrides: list[str], limit: int = 80) -> str:
    """A folder name for a multirun command: its overrides in a stable order, made safe for every file system,
    with a short hash of the exact command when they had to be shortened or changed."""
    import hashlib
    import re

    chosen = sorted(o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/")))  # where, not what
    text = ",".join(chosen) or "defaults"
    safe = re.sub(r"[^A-Za-z0-9=.,_+-]", "_", text)
    if safe == text and len(safe) <= limit:
        return safe
    return f"{safe[:limit]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


@app.command()
def configs(
    group: Optional[str] = typer.Argument(None, help="One group (dataset, divergence, anneal, ...); default: all."),
) -> None:
    """List the config groups, their options (the default marked) and what each is; `experiment=` options set
    several groups at once. [dim]Example: ganneal configs divergence[/]"""
    from rich.console import Console
    from rich.table import Table

    from gan_anneal.config import default_choices, group_options

    groups = group_options()
    if group is not None and group not in groups:
        fail(f"No config group {group!r}. Groups: {', '.join(groups)}.")
    defaults = default_choices()
    table = Table(show_header=True, header_style="bold", show_lines=False)
    for column in ("group", "option", "what it is"):
        table.add_column(column, overflow="fold")
    for name, options in groups.items():
        if group is not None and name != group:
            continue
        for i, (option, description) in enumerate(options):
            marked = f"[bold]{option}[/] (default)" if option == defaults.get(name) else option
            table.add_row(name if i == 0 else "", marked, description, end_section=i == len(options) - 1)
    Console().print(table)
    Console().print("[dim]Choose with GROUP=OPTION (ganneal train dataset=grid25 divergence=rkl); see an option's "
                    "keys with ganneal train GROUP=OPTION --cfg job.[/]")


@app.command()
def schedule(
    overrides: Optional[List[str]] = typer.Argument(None, help="e.g. anneal=oa anneal.cycles=2 train.steps=10000"),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a PNG of λ(t), β(t), w(t)."),
    compare: bool = typer.Option(False, "--compare", help="Plot pma, nma and oa together (the paper's Figure 4)."),
) -> None:
    """Show an annealing schedule's λ(t), β(t) and w(t) before spending compute on it."""
    from rich.console import Console

    from gan_anneal.config import compose
    from gan_anneal.errors import UserError
    from gan_anneal.experiments.schedule_plot import plot_schedules, schedule_curves

    overrides = list(overrides or [])
    if plot:
        _check_output_path(plot, PLOT_SUFFIXES, "the figure", "--plot")
    try:
        if compare:  # each schedule composed itself, so anneal.* keys work without an anneal= choice
            configs = {n: compose([*overrides, f"anneal={n}"]) for n in ("pma", "nma", "oa")}
        else:
            single = compose(overrides)
            configs = {single.anneal.name: single}
        curves = {n: schedule_curves(c) for n, c in configs.items()}
    except UserError as error:
        fail(str(error))
    for name, cfg in configs.items():  # one table per schedule (all three with --compare)
        warmup = float(cfg.anneal.get("warmup", 0.0))  # JSD on the toys has one by default (conf/divergence_anneal)
        Console().print(f"anneal={cfg.anneal.name} · regularizer={cfg.regularizer.name} · divergence="
                        f"{cfg.divergence.name} · {cfg.train.steps} steps"
                        + (f" · the first {warmup:.0%} at λ = 0 (anneal.warmup)" if warmup else ""))
        Console().print(_schedule_table(curves[name]))
    if plot:
        plot_schedules(curves, Path(plot))
        Console().print(f"plot: [bold]{plot}[/]")


def _schedule_table(c: dict):
    from rich.table import Table

    table = Table()
    for column in ("step", "λ", "β", "w_lik", "w_ent"):
        table.add_column(column, justify="right")
    for i in range(0, len(c["step"]), max(1, len(c["step"]) // 10)):
        table.add_row(str(c["step"][i]), f"{c['lam'][i]:+.4f}", f"{c['beta'][i]:.4f}", f"{c['w_lik'][i]:+.4f}",
                      f"{c['w_ent'][i]:+.4f}")
    return table


@app.command()
def curves(
    run_dirs: List[str] = typer.Argument(..., help="Run directories to overlay."),
    metric: List[str] = typer.Option(["eval/kl_target_model"], "--metric", "-k",
                                     help="A metrics.jsonl key, repeatable: eval/modes_covered, loss_d, lam, beta, ..."),
    out: str = typer.Option("curves.png", "--out", "-o"),
    label: Optional[List[str]] = typer.Option(None, "--label", help="One label per run (default: divergence · anneal)."),
    log_y: bool = typer.Option(False, "--log-y", help="A logarithmic y axis (FID over training)."),
) -> None:
    """Overlay metrics over training steps for several runs (the paper's Figure 5, learning dynamics)."""
    from gan_anneal.errors import UserError
    from gan_anneal.experiments.curves import plot_curves

    _check_output_path(out, PLOT_SUFFIXES, "the curves figure")
    if label and len(label) != len(run_dirs):
        fail(f"--label was given {len(label)} times for {len(run_dirs)} runs; give one per run or none.")
    try:
        path = plot_curves(run_dirs, metric, Path(out), label, log_y=log_y)
    except UserError as error:
        fail(str(error))
    typer.echo(f"plot: {path}")


@app.command("gibbs-check")
def gibbs_check(
    out: str = typer.Option("runs/gibbs", help="Folder for the runs, gibbs.md, gibbs.json and gibbs.png."),
    steps: Optional[int] = typer.Option(None, help="Generator steps per run (default: experiment=gibbs's 3000)."),
    seed: int = typer.Option(0),
    jobs: Optional[int] = typer.Option(None, help="Parallel single-thread jobs (default: one per core)."),
    grid: str = typer.Option("small", help="small (7 rows, both signs, about 2 min) or table1 (the paper's λ grid "
                             "-50 … 50 for both regularisers)."),
) -> None:
    """Train gauss1d over a λ grid and compare the model variance with the Gibbs prediction 1/β."""
    from rich.console import Console
    from rich.table import Table

    from gan_anneal.experiments.gibbs import GRIDS, run_gibbs_check

    if grid not in GRIDS:
        fail(f"--grid {grid!r} is not a Gibbs grid. Valid: {', '.join(GRIDS)}.")
    rows = run_gibbs_check(out, grid=GRIDS[grid], steps=steps, seed=seed, jobs=jobs,
                           log=lambda message: Console().print(message, highlight=False))
    table = Table(title="Gibbs check: variance of μ^β for μ = N(0, 1)")
    for column in ("regulariser", "negative", "λ", "β", "predicted 1/β", "measured", "error"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r.regularizer, r.negative, f"{r.lam:g}", f"{r.beta:.4g}", f"{r.predicted_var:.4g}",
                      f"{r.measured_var:.4g}", f"{100 * r.rel_error:.1f}%")
    Console().print(table)
    Console().print(f"table, JSON and plot in [bold]{out}[/]")


def _report_sweep(outcomes: list[str]) -> None:
    from collections import Counter

    from rich.console import Console

    from gan_anneal.results.slurm_jobs import ON_THE_CLUSTER

    counts = Counter(outcomes)
    if set(counts) & set(ON_THE_CLUSTER):  # submit and leave: the jobs end on the cluster, after this command
        Console().print("sweep submitted: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                        + " · `ganneal runs` on the sweep directory shows them as they finish; the same command "
                          "again submits only what is neither finished nor queued")
        return
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
    _check_output_path(out, PLOT_SUFFIXES, "the figure")
    from gan_anneal.errors import UserError
    from gan_anneal.experiments.energy_figure import energy_figure

    try:
        path = energy_figure(run_a, run_b, out, n_samples=samples, seed=seed)
    except UserError as error:
        fail(str(error))
    typer.echo(f"wrote {path}")


@app.command("pixel-descent")
def pixel_descent(
    run_dir: str = typer.Argument(..., help="A finished run of an f-divergence GAN (jsd, rkl, bgan_*, fgan_*)."),
    critic_steps: int = typer.Option(1000, "--critic-steps", help="Critic steps against the frozen generator."),
    steps: int = typer.Option(300, "--steps", help="Gradient-descent steps on the samples themselves."),
    lr: float = typer.Option(0.01, "--lr", help="Step size of the descent on the samples."),
    n: int = typer.Option(2000, "-n", help="Samples descended."),
) -> None:
    """BGAN's stability demonstration: train the run's critic further, then descend the proxy loss and the
    boundary-seeking loss on the samples themselves; snapshots and a JSON record go to RUN/pixel_descent/.
    [dim]Example: ganneal pixel-descent runs/<jsd run> --critic-steps 1000 --steps 300[/]"""
    if min(critic_steps, steps, n) < 1 or lr <= 0:
        fail("--critic-steps, --steps and -n must be positive integers and --lr a positive number.")
    from rich.console import Console

    from gan_anneal.errors import UserError
    from gan_anneal.experiments.pixel_descent import pixel_descent as descend
    from gan_anneal.experiments.pixel_descent import trajectory_table

    try:
        record = descend(run_dir, critic_steps=critic_steps, steps=steps, lr=lr, n=n)
    except UserError as error:
        fail(str(error))
    Console().print(trajectory_table(record))
    typer.echo(f"snapshots in {Path(run_dir) / 'pixel_descent'}")


EVALUATE = shipped("evaluate")  # the defaults the evaluate options name in their help


@app.command()
def evaluate(
    run_dir: str = typer.Argument(..., help="A run directory (the folder `ganneal train` printed)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated: is,fid,kid,prc (prc: precision and recall, k = 3) or none. "
                                          f"Default: the run's evaluate.metrics ({EVALUATE['metrics']})."),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", "-n", help=f"Generated samples (default {EVALUATE['num_samples']})."),
    inception_weights: Optional[str] = typer.Option(None, "--inception-weights", help="weights-inception-2015-12-"
                                                    "05-6726825d.pth (else config, $GANNEAL_INCEPTION_WEIGHTS, "
                                                    "torch's hub cache)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help=f"Feature-extraction batch (default {EVALUATE['batch_size']})."),
    extractor: Optional[str] = typer.Option(None, "--extractor", help=f"{EVALUATE['extractor']} (default), "
                                            "ganneal-mnist (a digit classifier: mnist_small / mnist runs, offline) "
                                            "or ganneal-tiny (offline stand-in: smoke tests only)."),
    generator: Optional[str] = typer.Option(None, "--generator", help="auto (EMA when kept) | ema | raw."),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best (checkpoints/best.pt: the best "
                                   "train.best_metric the run saw, when it trained with one)."),
    reference_split: Optional[str] = typer.Option(None, "--reference-split", help=f"Default: {EVALUATE['reference_split']}."),
    reference_count: Optional[int] = typer.Option(None, "--reference-count", help="Use the first N reference images."),
    is_splits: Optional[int] = typer.Option(None, "--is-splits", help=f"IS splits (default {EVALUATE['is_splits']})."),
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
    from gan_anneal.evaluate.options import resolve_options

    console = Console()
    if probe and metrics is None:  # --probe alone: only the fresh-critic measures
        metrics = "none"
    try:
        options = resolve_options(Path(run_dir), metrics=metrics, num_samples=num_samples, batch_size=batch_size,
                                  extractor=extractor, inception_weights=inception_weights,
                                  download_weights=download_weights, reference_split=reference_split,
                                  reference_count=reference_count, is_splits=is_splits, generator=generator,
                                  cache_dir=cache_dir, verbose=verbose, checkpoint=checkpoint)
        measures = comma_list(probe)
        if probe is not None and not measures:
            raise UserError("--probe needs a comma-separated list of measures, e.g. js,rkl,w.")
        if not options.metrics and not measures:
            raise UserError("--metrics none and no --probe: nothing to evaluate.")
        run_probes = _probe_runner() if measures else None
        if options.metrics:
            from gan_anneal.evaluate.run_eval import evaluate_run

            result = evaluate_run(run_dir, options, log=lambda m: console.print(f"[dim]{m}[/]"))
            _print_fidelity(console, result)
        if run_probes is not None:  # prints its own table and merges its numbers into eval.json
            run_probes(run_dir, measures, probe_steps, checkpoint=checkpoint)
    except UserError as error:
        fail(str(error))
    console.print(f"written: [bold]{Path(run_dir) / 'eval.json'}[/]")


def _probe_runner():
    """experiments.critic_probe.run_probes, or a clear error where an installation lacks it."""
    from gan_anneal.errors import UserError

    try:
        from gan_anneal.experiments.critic_probe import run_probes
    except ModuleNotFoundError as error:
        if error.name != "gan_anneal.experiments.critic_probe":
            raise
        raise UserError("--probe needs gan_anneal.experiments.critic_probe (the BGAN fresh-critic "
                        "evaluation), which this installation does not have.") from None
    return run_probes


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



# Sweeps and tables -------------------------------------------------------------------------------

def _split_list(text: Optional[str]) -> Optional[list[str]]:
    return comma_list(text) or None


def _on_gpu(device: str) -> bool:
    return device == "cuda" or (device == "auto" and __import__("torch").cuda.is_available())


# Runs that share one GPU by default: a DCGAN-32 at batch 64 uses a small part of a modern GPU. An estimate until
# benchmarks/gpu.sh measures steps/s summed for K = 1, 4, 8 concurrent runs (docs/benchmarks.md); override with -j.
GPU_JOBS = 4


def _sweep_names() -> list[str]:
    """The shipped sweeps, read from the folder (no import of the sweep machinery for --help)."""
    return sorted(p.stem for p in (Path(__file__).parent / "conf" / "sweep").glob("*.yaml"))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sweep(
    name: str = typer.Argument(..., help=f"A named sweep in conf/sweep/ ({', '.join(_sweep_names())}), or the "
                               "path of your own sweep file in the same format."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Overrides for every run, e.g. train.steps=500.",
                                                    show_default=False),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Output folder (default: the sweep's, "
                                      "runs/<name>)."),
    launcher: Optional[str] = typer.Option(None, "--launcher", help="Where the jobs run: basic (one after another "
                                           "in this process), joblib (side by side on this machine), "
                                           "submitit_local, slurm (a cluster, with ganneal's requeue defaults; "
                                           "hydra.launcher.* sets partition, GPUs, time), submitit_slurm (Hydra's own). Default: joblib (several jobs share one GPU or the cores)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="joblib: runs side by side, one torch thread each. "
                                       "Default: one per core on a CPU; 4 per GPU (docs/benchmarks.md)."),
    retry: bool = typer.Option(False, "--retry", help="Train afresh the jobs whose folder holds a failed run or a "
                               "run with other settings (default: report and leave them)."),
    divergences: Optional[str] = typer.Option(None, "--divergences", help="Only these rows, e.g. rkl,jsd."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Only these columns, e.g. --columns=-1,0,PMA."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Only these seeds, e.g. --seeds 0."),
    check: bool = typer.Option(False, "--check", help="Only check the prerequisites (GPU, data, weights)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List each run and what would be done with it."),
    no_wait: bool = typer.Option(False, "--no-wait", help="--launcher slurm: submit the jobs and return (log out; "
                                 "the same command again submits only what is neither finished nor queued)."),
) -> None:
    """Run a named sweep as Hydra multiruns, resumably: finished jobs end at once, interrupted ones resume, ones
    with other settings or failed ones are retrained only with --retry. [dim]Examples: ganneal sweep toy_table ·
    ganneal sweep cifar10_table --launcher slurm --no-wait hydra.launcher.partition=gpu ·
    ganneal sweep cifar10_table_smoke --out runs/smoke[/]"""
    from rich.console import Console

    from gan_anneal.errors import UserError
    from gan_anneal.experiments.sweep import next_action, run_sweep

    console = Console()
    overrides = list(overrides or [])
    if jobs is not None and jobs < 1:
        fail(f"--jobs must be a positive integer, got {jobs}.")
    seed_list = [int(x) for x in _split_list(seeds)] if seeds else None
    spec, out_dir, planned, jobs, launcher = _plan_sweep(name, out, overrides, divergences, columns, seed_list,
                                                         jobs, launcher, no_wait, console)
    if check:
        console.print(f"[green]✓[/] sweep {name}: prerequisites present ({len(planned)} runs planned in {out_dir})")
        return
    if dry_run:
        for job in planned:
            console.print(f"{next_action(job, spec):12s} {job.path}", highlight=False)
        return
    try:
        report = run_sweep(spec, out_dir, overrides, launcher=launcher, jobs=jobs, retry=retry,
                           divergences=_split_list(divergences), columns=_split_list(columns), seeds=seed_list,
                           log=lambda message: console.print(message, highlight=False, soft_wrap=True),
                           wait=not no_wait)
    except UserError as error:
        fail(str(error))
    _sweep_ending(console, name, report, out_dir, planned, jobs if launcher == "joblib" else 1, no_wait)
    raise typer.Exit(report.exit_code)


def _sweep_ending(console, name: str, report, out_dir, planned, parallel: int, no_wait: bool) -> None:
    """How the sweep's jobs stand, where the table is, and what the finished ones cost."""
    from collections import Counter

    counts = Counter(report.after.values())
    console.print(f"sweep {name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                  + f"; exit code {report.exit_code}; table: [bold]ganneal table {out_dir}[/]", soft_wrap=True)
    if no_wait:
        console.print(f"submitted: [bold]ganneal runs {out_dir}[/] shows the jobs as they finish", soft_wrap=True)
    else:
        from gan_anneal.experiments.sweep_progress import measured_cost

        console.print(measured_cost(planned, parallel), highlight=False)


def _plan_sweep(name, out, overrides, divergences, columns, seed_list, jobs, launcher, no_wait, console):
    """The sweep's spec, folder, jobs, job count and launcher; bad input and missing prerequisites are exit 2."""
    from gan_anneal.config import compose
    from gan_anneal.errors import UserError
    from gan_anneal.experiments.sweep import check_prerequisites, launcher_overrides, load_sweep, plan_jobs

    try:
        spec = load_sweep(name)
        out_dir = out or spec.out
        planned = plan_jobs(spec, out_dir, overrides, _split_list(divergences), _split_list(columns), seed_list)
        if not planned:
            raise UserError("--divergences/--columns leave no run to do.")
        first_cfg = compose(planned[0].overrides)  # bad overrides fail here, once, not in every run
        jobs = jobs or (GPU_JOBS if _on_gpu(first_cfg.device.name) else (os.cpu_count() or 1))
        launcher = launcher or ("joblib" if jobs > 1 else "basic")
        launcher_overrides(launcher, jobs, wait=not no_wait)
        problems = check_prerequisites(spec, overrides)
    except UserError as error:
        fail(str(error))
    if problems:
        console.print(f"[bold red]sweep {name} cannot run here:[/]")
        for problem in problems:
            console.print(f"  [red]✗[/] {problem}", highlight=False)
        raise typer.Exit(2)
    return spec, out_dir, planned, jobs, launcher


@app.command()
def table(
    runs_dir: str = typer.Argument(..., help="A folder of run directories (searched recursively for "
                                   "summary.json), e.g. runs/cifar10_table or a multirun's sweep dir."),
    fmt: str = typer.Option("rich", "--format", "-f", help="rich | markdown | csv | latex."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Print a published table beside ours: "
                                            "tao2019 (Tao et al. 2019, Table 1: CIFAR-10 IS and FID)."),
    metric: Optional[List[str]] = typer.Option(None, "--metric", "-m", help="is, fid, kid, modes_covered, "
                                               "hq_fraction, kl_target_model, ... (repeatable; default: IS and "
                                               "FID for evaluated image runs, else the toy metrics)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Also write the table to this file."),
    digits: Optional[int] = typer.Option(None, "--digits", min=0, help="Decimals shown (default: 2 for IS, 1 for "
                                         "FID)."),
    eval_samples: Optional[int] = typer.Option(None, "--eval-samples", help="Use each run's kept evaluation of this "
                                               "many samples (default: the one with the most samples)."),
    extractor: Optional[str] = typer.Option(None, "--extractor", help="Use each run's kept evaluation made with this "
                                            "feature extractor (e.g. ganneal-mnist)."),
    against: Optional[str] = typer.Option(None, "--against", help="Also print each column's difference from this "
                                          "column (e.g. 0: λ = 0) with a 95% interval, paired by seed where both "
                                          "columns ran the same seeds."),
    unpaired: bool = typer.Option(False, "--unpaired", help="With --against: compare the columns' means as "
                                  "independent runs (Welch), even where they share seeds."),
    seed: Optional[List[int]] = typer.Option(None, "--seed", help="Only runs of this seed (repeatable), e.g. --seed 0 "
                                             "to set one-seed columns beside the same seed of the others."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Only these columns, e.g. --columns=0,PMA,NMA,OA "
                                          "(as for ganneal sweep)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="With --against: also draw the differences and their "
                                       "intervals, a panel a metric (PNG, PDF or SVG)."),
) -> None:
    """Tabulate runs in the layout of Tao et al. (2019), Table 1: rows divergence, columns λ then PMA/NMA/OA,
    mean ± std over seeds, best per row marked. [dim]Examples: ganneal table runs/cifar10_table --reference
    tao2019 · ganneal table runs/toy_table --format markdown --metric modes_covered[/]"""
    from pathlib import Path

    from gan_anneal.errors import UserError
    from gan_anneal.results.render import FORMATS

    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: valid are {', '.join(FORMATS)}.")
    if unpaired and against is None:
        fail("--unpaired changes how --against compares columns: add --against 0 (or another column).")
    if plot and against is None:
        fail("--plot draws the --against differences: add --against 0 (or another column).")
    if plot:
        _check_output_path(plot, PLOT_SUFFIXES, "the figure", "--plot")
    if out:
        _check_output_path(out, TABLE_SUFFIXES[fmt], f"a --format {fmt} table")
    if not Path(runs_dir).is_dir():
        fail(f"'{runs_dir}' is not a folder. Pass the folder holding the run directories (e.g. runs/cifar10_table).")
    try:
        tables, text, (baseline, differences, panels) = _tables(
            runs_dir, fmt, reference, metric, digits, {"num_samples": eval_samples, "extractor": extractor}, against,
            unpaired, seed, columns)
    except UserError as error:
        fail(str(error))
    _print_tables(tables, text, differences, fmt)
    if plot:
        from gan_anneal.results.verdict_figure import write_verdict_figure

        try:
            typer.echo(f"written: {write_verdict_figure(panels, baseline, plot, reference or '')}", err=True)
        except OSError as error:  # checked before any work, but a disk can fill or a folder go meanwhile
            fail(f"--plot {plot}: {error}")
    if out:
        Path(out).write_text(text)
        typer.echo(f"written: {out}", err=True)


def _tables(runs_dir, fmt, reference, metric, digits, evaluation, against, unpaired, seeds=None, columns=None):
    """The tables of the runs under runs_dir, rendered in fmt, and the --against verdict as `compare.verdict` gives
    it, (baseline, markdown, panels) (empty without --against)."""
    from gan_anneal.results.collect import collect_runs, planned_evaluation, planned_grid
    from gan_anneal.results.render import render
    from gan_anneal.results.table import build_tables, check_metrics, default_metrics

    records = collect_runs(runs_dir, evaluation)
    planned = planned_grid(runs_dir)
    if not records and not planned:
        fail(f"No run directories under '{runs_dir}' (no summary.json found).")
    if any(evaluation.values()):
        _check_evaluation_kept(records, runs_dir, evaluation)
    if seeds:
        present = sorted({r.seed for r in records})
        records = [r for r in records if r.seed in seeds]
        if not records:
            fail(f"--seed {', '.join(map(str, seeds))}: no run here has that seed. Seeds present: "
                 f"{', '.join(map(str, present)) or 'none'}.")
    ref = None
    if reference:
        from gan_anneal.results.reference import load_reference

        ref = load_reference(reference)
    if columns:
        records, planned, ref = _only_columns(columns, records, planned, ref)
    if metric:
        check_metrics(list(metric), records)
    names = list(metric or default_metrics(records, planned_evaluation(runs_dir)))
    tables = build_tables(records, names, reference=ref, planned=planned, digits=digits)
    text, found = render(tables, fmt), ("", "", [])
    if against is not None:
        from gan_anneal.results.compare import verdict
        from gan_anneal.results.table import metric_by_name

        found = verdict(records, [metric_by_name(m) for m in names], against, paired=not unpaired, reference=ref)
        if fmt == "markdown":  # CSV and LaTeX stay machine-readable: the verdict goes to the terminal only
            text += found[1]
    return tables, text, found


def _only_columns(text: str, records, planned, ref):
    """--columns: the runs, the sweep's plan and the published row cut to those columns (keys as the table prints)."""
    import dataclasses

    from gan_anneal.config import comma_list
    from gan_anneal.results.collect import column_order
    from gan_anneal.results.compare import baseline_column

    keep = [baseline_column(c) for c in comma_list(text)]
    present = {r.column for r in records} | set(planned[1] if planned else [])
    unknown = [c for c in keep if c not in present]
    if unknown:
        fail(f"--columns {text}: no run here is in column {', '.join(unknown)}. Columns present: "
             f"{', '.join(sorted(present, key=column_order))}.")
    records = [r for r in records if r.column in keep]
    planned = (planned[0], [c for c in planned[1] if c in keep]) if planned else None  # the manifest holds table keys
    if ref is not None:
        ref = dataclasses.replace(ref, columns=[c for c in ref.columns if c in keep])
    return records, planned, ref


def _check_evaluation_kept(records, runs_dir, evaluation: dict) -> None:
    """--extractor / --eval-samples must name an evaluation some run kept (else every cell reads 'not evaluated')."""
    from gan_anneal.metric_names import FIDELITY_KEYS
    from gan_anneal.results.collect import collect_runs

    if any(key in r.metrics for r in records for key in FIDELITY_KEYS):
        return
    kept = sorted({f"{r.extractor} on {r.config.get('eval.num_samples')} samples" for r in collect_runs(runs_dir)
                   if r.extractor})
    asked = " ".join(f"--{'eval-samples' if k == 'num_samples' else k} {v}" for k, v in evaluation.items() if v)
    fail(f"{asked}: no run here kept an evaluation of that kind. Kept: {', '.join(kept) or 'none'} "
         "(`ganneal evaluate RUN` adds one).")


def _print_tables(tables, text: str, differences: str, fmt: str) -> None:
    if fmt == "rich":
        from rich.console import Console

        from gan_anneal.results.render import rich_tables, text_width

        console = Console()
        console = Console(width=max(console.width, text_width(tables)))  # a cut table is useless; let it wrap
        for t in rich_tables(tables):
            console.print(t)
        if differences:
            typer.echo(differences, nl=False)
    else:
        typer.echo(text, nl=False)
        if differences and fmt != "markdown":
            typer.echo(differences, nl=False, err=True)


TABLE_SUFFIXES = {"rich": (".txt",), "markdown": (".md", ".txt"), "csv": (".csv", ".txt"), "latex": (".tex", ".txt")}
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _check_output_path(path: str, suffixes: tuple[str, ...], what: str, flag: str = "--out") -> None:
    """Before any work: the file's folder exists and is writable, and its suffix fits what will be written."""
    from gan_anneal.config import first_writable_problem

    target = Path(path).expanduser()
    if target.is_dir():
        fail(f"{flag} {path} is a folder; give a file name, e.g. {Path(path) / ('out' + suffixes[0])}.")
    if target.suffix.lower() not in suffixes:
        fail(f"{flag} {path}: {what} is written as {', '.join(suffixes)}; give a name ending in one of them.")
    if not target.parent.is_dir():
        fail(f"{flag} {path}: the folder {target.parent} does not exist. Create it first (mkdir -p {target.parent}).")
    problem = first_writable_problem(str(target.parent))
    if problem:
        fail(f"{flag} {path}: {problem}.")


@app.command()
def runs(
    root: str = typer.Argument("runs", help="A folder of run directories (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON record per run instead of the table."),
) -> None:
    """List the runs under a folder: status (stale = marked running, no live writer), steps, the settings that
    tell them apart, key metrics and age. [dim]Example: ganneal runs runs/toy_table[/]"""
    from rich.console import Console

    from gan_anneal.results.listing import list_runs, rich_runs_table, runs_json

    if not Path(root).is_dir():
        fail(f"'{root}' is not a folder. Pass the folder holding the run directories (default: runs).")
    lines = list_runs(root)
    if not lines:
        fail(f"No run directories under '{root}' (no summary.json found).")
    if as_json:
        typer.echo(runs_json(lines))
        return
    console = Console()
    console = Console(width=max(console.width, 140))
    console.print(rich_runs_table(lines, root))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
