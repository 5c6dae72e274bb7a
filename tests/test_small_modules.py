"""The package's small shared modules, each against something independent of itself: optimizers.adam against
PyTorch's reference Adam, defaults.shipped against the composed config, the registry's refusals, progress lines."""

from __future__ import annotations

import pytest
import torch


def test_fused_adam_follows_the_reference_adam_step_for_step():
    from gan_anneal.optimizers import adam

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    ref.load_state_dict(net.state_dict())
    ours, theirs = adam(net.parameters(), lr=1e-2, betas=(0.5, 0.999)), torch.optim.Adam(ref.parameters(), lr=1e-2,
                                                                                          betas=(0.5, 0.999))
    assert ours.defaults["fused"] is True and not theirs.defaults.get("fused")
    x = torch.randn(64, 4)
    for _ in range(20):
        for model, opt in ((net, ours), (ref, theirs)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # the same algorithm; the last bit may differ


def test_the_shipped_defaults_are_what_a_config_composes_to():
    from gan_anneal.config import compose
    from gan_anneal.defaults import shipped

    composed = compose([])
    for section in ("train", "optim", "evaluate"):
        for key, value in shipped(section).items():
            assert composed[section][key] == value, (section, key)


def test_the_registry_refuses_a_second_name_and_names_the_choices_for_an_unknown_one():
    from gan_anneal.errors import UserError
    from gan_anneal.registry import Registry

    things = Registry("thing")
    things.register("a")(lambda **kw: ("a", kw))
    with pytest.raises(ValueError, match="registered twice"):
        things.register("a")(lambda: None)
    assert things.build("a", x=1) == ("a", {"x": 1})
    with pytest.raises(UserError, match="Unknown thing 'b'. Valid choices: a."):
        things.build("b")


def test_progress_off_a_terminal_is_plain_lines_with_an_eta():
    from rich.console import Console

    from gan_anneal.progress import StepProgress

    lines: list[str] = []
    console = Console(force_terminal=False, file=open("/dev/null", "w"))
    with StepProgress("work", 10, log=lines.append, every_s=0.0, console=console) as bar:
        for i in range(10):
            bar.update(i + 1)
    assert lines and lines[-1].startswith("work: 10/10") and "left" in lines[-1]
