"""Signal plumbing for a process that must stop cleanly: SIGINT/SIGTERM become a flag the training loop checks
between steps, a cluster's preemption signal is chained after the checkpoint, and the previous handlers come back
after the block. Plain Python, no torch: the sweep command forwards signals with it too."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager


def preemption_signal() -> signal.Signals | None:
    """The signal a cluster scheduler sends before preempting or timing out a job, when something (submitit's job
    environment) has a handler for it: submitit's $SUBMITIT_PREEMPT_SIGNAL, USR2 by default."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    sig = getattr(signal, f"SIG{name}", None) if hasattr(signal, "SIGUSR2") else None
    if sig is None or signal.getsignal(sig) in (signal.SIG_DFL, signal.SIG_IGN, None):
        return None
    return sig


@contextmanager
def stop_on_signals(flag: dict):
    """Turn SIGINT/SIGTERM into a flag the loop checks between steps, so the checkpoint is consistent.

    A preemption signal with a handler already installed (submitit's requeue) is chained: the loop checkpoints
    first, then hands the signal on (`flag["then"]`), so the requeued job resumes from this very step."""

    def handler(signum, frame):
        if flag.get("stop"):  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        flag["stop"] = signal.Signals(signum).name
        if signum in chained:
            flag["then"] = (chained[signum], signum)

    chained = {}
    preempt = preemption_signal()
    if preempt is not None:
        chained[preempt] = signal.getsignal(preempt)
    with signal_handlers((signal.SIGINT, signal.SIGTERM, *chained), handler):
        yield


@contextmanager
def signal_handlers(signals, handler):
    """`handler` for these signals inside the block, the previous handlers restored after it."""
    previous = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. some launchers): no handlers, nothing to restore
        previous = {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
