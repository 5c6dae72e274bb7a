"""Targets known only through an energy ψ(x): μ(x) ∝ exp(−ψ(x)) (Tao et al., 2019, Fig. 6; docs/design.md decision 5).

No sample of the target is ever drawn for training. `sample(n)` returns samples of a broad reference ν
(uniform on a box, or a wide Gaussian): they are the critic's "data". With an RKL-GAN whose data are ν and the
energy regulariser at weight λ (exact score −∇ψ), the optimum is ∝ ν·exp(−λψ): λ plays β itself. With the
uniform ν the optimum is exp(−λψ) restricted to the reference box; with ν = N(0, s²I) it carries the extra factor
exp(−‖x‖²/(2s²)) (a small bias when s is large; it is not corrected).

`log_prob(x)` is −ψ(x), unnormalised: that is all the `exact` score needs. The metrics need the normalised
density; `log_normaliser` computes log Z = log ∫ exp(−ψ) by midpoint quadrature on a fine grid, over the box for
targets that are only normalisable on a bounded domain (Rezende & Mohamed's U2–U4, `bounded = True`), and over a
box twice as wide for the others.

Metrics (written to summary.json), all on a `grid`×`grid` lattice over the plotting box:
  kl_model_target   KL(model ‖ target). The model's density is a histogram of its samples smoothed by a Gaussian
                    kernel of width `bandwidth`; the target's cell masses (quadrature) are smoothed by the same
                    kernel, so a perfect model scores ≈ 0 and, by the data-processing inequality, the estimate is
                    a lower bound of the true KL at that resolution. Samples outside the box go to one overflow cell.
  kl_target_model   the same, the other way round.
  kl_in_box         KL(model ‖ target) between the two conditioned on the box; with `outside_box` (the share of
                    samples outside it) this separates leaking from mis-shaping, which matters for U2–U4: their
                    target has no mass outside, so kl_model_target's overflow term is set by a 1e-12 floor.
  coverage          share of the target's mass in the `cover_cells`² coarse cells that hold at least
                    `cover_min_share` × the target's share of the model's samples.
  overlap           Σ_cells min(p, q) on the coarse cells (1 − total variation).
  ess               effective sample size, as a fraction of n, of the self-normalised importance weights
                    exp(−ψ(x))/q̂(x) at the model's samples, q̂ being the smoothed histogram density (floored at
                    one sample's kernel peak). It sees mismatch only where the model has samples: a model that
                    misses part of the mass can still score well; read it together with coverage.
  energy_mean       E_model[ψ].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gan_anneal.data.targets import Target
from gan_anneal.errors import UserError

Tensor = torch.Tensor
REFERENCES = ("uniform", "gaussian")


def _norm(x: Tensor) -> Tensor:
    return torch.sqrt((x**2).sum(-1) + 1e-12)  # finite gradient at the origin


def _gaussian_kernel(sigma_cells: float, dtype=torch.float64) -> Tensor:
    half = max(1, int(math.ceil(4 * sigma_cells)))
    t = torch.arange(-half, half + 1, dtype=dtype)
    k = torch.exp(-0.5 * (t / max(sigma_cells, 1e-6)) ** 2)
    return k / k.sum()


def smooth2d(grid: Tensor, sigma_cells: float) -> Tensor:
    """Separable Gaussian blur of a (G, G) array with zero padding (mass pushed past the edge is lost)."""
    if sigma_cells <= 0:
        return grid
    k = _gaussian_kernel(sigma_cells, grid.dtype)
    pad = len(k) // 2
    x = grid[None, None]
    x = F.conv2d(x, k.reshape(1, 1, -1, 1), padding=(pad, 0))
    x = F.conv2d(x, k.reshape(1, 1, 1, -1), padding=(0, pad))
    return x[0, 0]


def _kl(a: Tensor, b: Tensor, floor: float = 1e-12) -> float:
    """Σ a·log(a/b) over cells with a > 0, b floored so that mass where b has none costs a finite amount."""
    return float(torch.where(a > 0, a * (a / b.clamp(min=floor)).log(), torch.zeros_like(a)).sum())


class EnergyTarget(Target):
    """μ ∝ exp(−ψ) on R² (or on the box, when `bounded`). Subclasses define `energy(x)`."""

    dim = 2
    bounded = False
    modes = None
    mode_std = None

    def __init__(self, box=(-4.0, 4.0), reference: str = "uniform", reference_box=None,
                 reference_std: float = 3.0, poor_start=None, grid: int = 200, bandwidth: float = 0.1,
                 cover_cells: int = 20, cover_min_share: float = 0.2, quad_points: int = 800):
        self.box = (float(box[0]), float(box[1]))
        if not self.box[0] < self.box[1]:
            raise UserError(f"dataset.box must be [low, high] with low < high, got {list(box)}.")
        if reference not in REFERENCES:
            raise UserError(f"Unknown dataset.reference '{reference}'. Valid choices: {', '.join(REFERENCES)}.")
        self.reference = reference
        self.reference_box = tuple(float(v) for v in (reference_box or self.box))
        self.reference_std = float(reference_std)
        if self.reference_std <= 0:
            raise UserError(f"dataset.reference_std must be positive, got {reference_std}.")
        self.poor_start = None if poor_start is None else [float(v) for v in poor_start]
        if grid < 2 or cover_cells < 1 or grid % cover_cells:
            raise UserError(f"dataset.grid ({grid}) must be a multiple of dataset.cover_cells ({cover_cells}).")
        self.grid, self.bandwidth = int(grid), float(bandwidth)
        self.cover_cells, self.cover_min_share = int(cover_cells), float(cover_min_share)
        self.quad_points = int(quad_points)
        self.device = torch.device("cpu")
        self._log_z: tuple[float, float] | None = None

    # the energy ---------------------------------------------------------------------------------
    def energy(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        """−ψ(x): the unnormalised log-density (enough for the exact score)."""
        return -self.energy(x)

    def to(self, device) -> "EnergyTarget":
        self.device = torch.device(device)
        return self

    # the critic's data: the reference ν ------------------------------------------------------------
    def sample(self, n: int) -> Tensor:
        if self.reference == "uniform":
            lo, hi = self.reference_box
            return lo + (hi - lo) * torch.rand(n, self.dim, device=self.device)
        return self.reference_std * torch.randn(n, self.dim, device=self.device)

    # normalisation by quadrature ------------------------------------------------------------------
    def _quadrature(self) -> tuple[float, float]:
        """(log Z over the whole support, log Z over the box), by the midpoint rule."""
        lo, hi = self.box
        if self.bounded:
            qlo, qhi, n = lo, hi, self.quad_points // 2
        else:  # twice as wide, so the box edges fall on cell edges
            half = hi - lo
            qlo, qhi, n = lo - half / 2, hi + half / 2, self.quad_points
        h = (qhi - qlo) / n
        centres = qlo + h * (torch.arange(n, dtype=torch.float64) + 0.5)
        inner = (centres > lo) & (centres < hi)
        log_cells = torch.empty(n, n, dtype=torch.float64)
        with torch.no_grad():
            for i in range(0, n, 100):  # rows in chunks: bounded memory
                xs = centres[i:i + 100]
                pts = torch.stack(torch.meshgrid(xs, centres, indexing="ij"), -1).reshape(-1, 2)
                log_cells[i:i + 100] = -self.energy(pts).reshape(len(xs), n)
        log_cells = log_cells + 2 * math.log(h)
        log_z = torch.logsumexp(log_cells.reshape(-1), 0)
        log_z_box = torch.logsumexp(log_cells[inner][:, inner].reshape(-1), 0)
        return float(log_z), float(log_z_box)

    def _log_normalisers(self) -> tuple[float, float]:
        """(log Z over the whole quadrature grid, log Z inside the box), computed once."""
        if self._log_z is None:
            self._log_z = self._quadrature()
        return self._log_z

    @property
    def log_normaliser(self) -> float:
        return self._log_normalisers()[0]

    @property
    def box_mass(self) -> float:
        """The target's mass inside the plotting box (1 for bounded targets)."""
        log_z, log_z_box = self._log_normalisers()
        return math.exp(log_z_box - log_z)

    def normalised_log_prob(self, x: Tensor) -> Tensor:
        return -self.energy(x) - self.log_normaliser

    def bin_masses(self, edges: Tensor, sub: int = 3) -> Tensor:
        """Target mass of each grid cell (axis 0 = x₁, axis 1 = x₂), by a sub×sub midpoint rule per cell."""
        edges = edges.double().cpu()
        widths = edges[1:] - edges[:-1]
        offsets = (torch.arange(sub, dtype=torch.float64) + 0.5) / sub
        pts1d = (edges[:-1, None] + widths[:, None] * offsets[None]).reshape(-1)  # (B·sub,)
        b = len(widths)
        rows = []
        with torch.no_grad():
            for i in range(0, len(pts1d), 300):
                xs = pts1d[i:i + 300]
                pts = torch.stack(torch.meshgrid(xs, pts1d, indexing="ij"), -1).reshape(-1, 2)
                rows.append(self.normalised_log_prob(pts).exp().reshape(len(xs), -1))
        dens = torch.cat(rows).reshape(b, sub, b, sub).mean(dim=(1, 3))
        return dens * widths[:, None] * widths[None, :]

    # metrics ------------------------------------------------------------------------------------
    def _histogram(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        lo, hi = self.box
        g = self.grid
        inside = ((x > lo) & (x < hi)).all(dim=1)
        idx = ((x - lo) / (hi - lo) * g).long().clamp(0, g - 1)
        flat = idx[inside, 0] * g + idx[inside, 1]
        counts = torch.bincount(flat, minlength=g * g).double().reshape(g, g)
        return counts, inside, idx

    def metrics(self, samples: Tensor, settings=None) -> dict:
        x = samples.detach().double().cpu()
        n = len(x)
        lo, hi = self.box
        g = self.grid
        cell = (hi - lo) / g
        sigma = self.bandwidth / cell

        counts, inside, idx = self._histogram(x)
        q_out = float((~inside).sum()) / n
        q = smooth2d(counts / n, sigma)
        q = q * ((1 - q_out) / q.sum().clamp(min=1e-300)) if q.sum() > 0 else q

        p_cells = self.bin_masses(torch.linspace(lo, hi, g + 1, dtype=torch.float64))
        p_in = min(1.0, self.box_mass)
        p = smooth2d(p_cells, sigma)
        p = p * (p_in / p.sum())
        p_out = max(0.0, 1.0 - p_in)

        qv = torch.cat([q.reshape(-1), torch.tensor([q_out], dtype=torch.float64)])
        pv = torch.cat([p.reshape(-1), torch.tensor([p_out], dtype=torch.float64)])
        kl_qp, kl_pq = _kl(qv, pv), _kl(pv, qv)
        # The same KL between the two distributions conditioned on the box. For energies defined on the box only
        # (p_out = 0) the overflow term above is q_out·log(q_out/floor): real (the KL is infinite) but its size is
        # the floor's, so samples that leave the box are reported apart, as `outside_box`.
        kl_in_box = _kl(q / q.sum().clamp(min=1e-300), p / p.sum())

        # coverage and overlap on coarse cells (raw counts, exact masses)
        c = self.cover_cells
        block = g // c
        p_coarse = p_cells.reshape(c, block, c, block).sum(dim=(1, 3))
        q_coarse = (counts / n).reshape(c, block, c, block).sum(dim=(1, 3))
        covered = q_coarse >= self.cover_min_share * p_coarse / max(float(p_coarse.sum()), 1e-300)
        covered &= q_coarse > 0
        coverage = float((p_coarse * covered).sum() / p_coarse.sum())
        overlap = float(torch.minimum(p_coarse / p_coarse.sum() * p_in, q_coarse).sum()) + min(p_out, q_out)

        # ESS of self-normalised weights exp(−ψ)/q̂ at the model's own samples
        with torch.no_grad():
            psi = self.energy(x)
        # q̂ at a sample is never below its own kernel's peak 1/(n·2πh²): this keeps samples outside the box
        # (not in the histogram) and isolated samples from getting absurd weights from an empty cell
        q_density = (q[idx[:, 0], idx[:, 1]] / cell**2).clamp(min=1.0 / (n * 2 * math.pi * self.bandwidth**2))
        log_w = -psi - q_density.clamp(min=1e-300).log()
        if self.bounded:
            log_w = torch.where(inside, log_w, torch.full_like(log_w, -math.inf))
        log_w = torch.where(torch.isfinite(log_w), log_w, torch.full_like(log_w, -math.inf))
        if torch.isfinite(log_w).any():
            w = torch.softmax(log_w, 0)
            ess = float(1.0 / (w**2).sum()) / n
        else:
            ess = 0.0
        return {
            "kl_model_target": kl_qp,
            "kl_target_model": kl_pq,
            "kl_in_box": kl_in_box,
            "coverage": coverage,
            "overlap": overlap,
            "ess": ess,
            "energy_mean": float(psi[torch.isfinite(psi)].mean()) if torch.isfinite(psi).any() else math.inf,
            "outside_box": q_out,
            "log_normaliser": self.log_normaliser,
        }

    # pictures -----------------------------------------------------------------------------------
    def density_image(self, resolution: int = 200) -> Tensor:
        """Normalised density on a resolution² lattice, indexed [x₂, x₁] for imshow(origin='lower')."""
        lo, hi = self.box
        axis = torch.linspace(lo, hi, resolution, dtype=torch.float64)
        xx, yy = torch.meshgrid(axis, axis, indexing="xy")
        with torch.no_grad():
            dens = self.normalised_log_prob(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)).exp()
        return dens.reshape(resolution, resolution)

    def draw(self, ax, samples: Tensor | None = None, title: str = "", max_points: int = 1500) -> None:
        lo, hi = self.box
        ax.imshow(self.density_image().numpy(), extent=(lo, hi, lo, hi), origin="lower", cmap="Blues",
                  aspect="equal")
        if samples is not None:
            s = samples.detach().cpu()[:max_points]
            ax.scatter(s[:, 0].numpy(), s[:, 1].numpy(), s=1.5, c="tab:red", alpha=0.5, linewidths=0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)

    def save_picture(self, samples: Tensor, path, title: str = "") -> None:
        # deferred: matplotlib is slow to import and only this path needs it
        from gan_anneal.figures import pyplot as _pyplot
        from gan_anneal.figures import save_figure  # deferred: matplotlib is slow to import and only this path needs it

        plt = _pyplot()
        lo, hi = self.box
        counts, _, _ = self._histogram(samples.detach().double().cpu())
        model = smooth2d(counts / max(len(samples), 1), self.bandwidth / ((hi - lo) / self.grid))
        fig, axes = plt.subplots(1, 2, figsize=(7, 3.6), dpi=90)
        self.draw(axes[0], samples, f"target + samples {title}".strip())
        axes[1].imshow(model.T.numpy(), extent=(lo, hi, lo, hi), origin="lower", cmap="Reds", aspect="equal")
        axes[1].set_xticks([])
        axes[1].set_yticks([])
        axes[1].set_title("model density (smoothed histogram)", fontsize=9)
        save_figure(fig, path)


# The energies ------------------------------------------------------------------------------------


def _w1(x: Tensor) -> Tensor:
    return torch.sin(2 * math.pi * x[..., 0] / 4)


def _w2(x: Tensor) -> Tensor:
    return 3 * torch.exp(-0.5 * ((x[..., 0] - 1) / 0.6) ** 2)


def _w3(x: Tensor) -> Tensor:
    return 3 * torch.sigmoid((x[..., 0] - 1) / 0.3)


class Kidney(EnergyTarget):
    """The one-lobed ring (va-gan.md §5): ψ = ½((‖x‖ − r)/s)² + ½((x₁ − r)/t)², a bean on the +x₁ side."""

    def __init__(self, radius: float = 2.0, ring_std: float = 0.4, lobe_std: float = 0.6, **common):
        super().__init__(**common)
        self.radius, self.ring_std, self.lobe_std = float(radius), float(ring_std), float(lobe_std)

    def energy(self, x: Tensor) -> Tensor:
        return 0.5 * ((_norm(x) - self.radius) / self.ring_std) ** 2 \
            + 0.5 * ((x[..., 0] - self.radius) / self.lobe_std) ** 2


class U1(EnergyTarget):
    """Rezende & Mohamed (2015) U1: the ring with two lobes at x₁ = ±2."""

    def energy(self, x: Tensor) -> Tensor:
        a = -0.5 * ((x[..., 0] - 2) / 0.6) ** 2
        b = -0.5 * ((x[..., 0] + 2) / 0.6) ** 2
        return 0.5 * ((_norm(x) - 2) / 0.4) ** 2 - torch.logaddexp(a, b)


class U2(EnergyTarget):
    """Rezende & Mohamed (2015) U2: a sine band; normalisable only on the box (x₁ is unconstrained)."""

    bounded = True

    def energy(self, x: Tensor) -> Tensor:
        return 0.5 * ((x[..., 1] - _w1(x)) / 0.4) ** 2


class U3(EnergyTarget):
    """Rezende & Mohamed (2015) U3: two sine bands that split around x₁ = 1; bounded to the box."""

    bounded = True

    def energy(self, x: Tensor) -> Tensor:
        d = x[..., 1] - _w1(x)
        return -torch.logaddexp(-0.5 * (d / 0.35) ** 2, -0.5 * ((d + _w2(x)) / 0.35) ** 2)


class U4(EnergyTarget):
    """Rezende & Mohamed (2015) U4: a sine band and a second one that branches off for x₁ > 1; bounded."""

    bounded = True

    def energy(self, x: Tensor) -> Tensor:
        d = x[..., 1] - _w1(x)
        return -torch.logaddexp(-0.5 * (d / 0.4) ** 2, -0.5 * ((d + _w3(x)) / 0.35) ** 2)


class Banana(EnergyTarget):
    """x₁ ~ N(0, s₁²), x₂ | x₁ ~ N(c·x₁² + shift, s₂²): a curved ridge with Z = 2π·s₁·s₂ exactly."""

    def __init__(self, std1: float = 1.2, std2: float = 0.5, curvature: float = 0.4, shift: float = -2.0,
                 **common):
        super().__init__(**common)
        self.std1, self.std2, self.curvature, self.shift = float(std1), float(std2), float(curvature), float(shift)

    def energy(self, x: Tensor) -> Tensor:
        ridge = self.curvature * x[..., 0] ** 2 + self.shift
        return 0.5 * (x[..., 0] / self.std1) ** 2 + 0.5 * ((x[..., 1] - ridge) / self.std2) ** 2

    @property
    def exact_log_normaliser(self) -> float:
        return math.log(2 * math.pi * self.std1 * self.std2)


ENERGIES = {"energy_kidney": Kidney, "energy_u1": U1, "energy_u2": U2, "energy_u3": U3, "energy_u4": U4,
            "energy_banana": Banana}
