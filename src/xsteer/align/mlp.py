"""A small non-linear alignment map: a linear path plus a residual MLP branch, trained in torch.

``f(x) = mu_y + sy * (L(xn) + g(xn))`` with ``xn = (x - mu_x) / sx``; ``L`` starts at the ridge
solution and ``g`` (one hidden layer, zero-initialised output) starts at zero, so training begins
at the linear answer and only departs from it where held-out loss improves (early stopping on a
seeded validation slice). ``sx``/``sy`` are scalar RMS scales: they tame Gemma-sized norms without
reweighting dimensions.

A direction travels either as a finite difference around the benign mean,
``f(mu_x + v) - f(mu_x)`` (``transport_mode="difference"``, the reference paper's choice), or as
the Jacobian-vector product ``J_f(mu_x) v`` (``"jvp"``, the infinitesimal version).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from xsteer.align.base import AlignmentConfigError, AlignmentMap, need_shape

TRANSPORT_MODES = ("difference", "jvp")


class _Net(nn.Module):
    def __init__(self, ds: int, dt: int, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(ds, dt)
        self.branch = nn.Sequential(nn.Linear(ds, hidden), nn.GELU(), nn.Linear(hidden, dt))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.branch(x)


class MLPMap(AlignmentMap):
    """Residual MLP map (linear + one hidden layer), deterministic given ``seed``.

    Args:
        hidden: width of the non-linear branch.
        epochs: maximum passes over the training rows.
        lr, weight_decay: AdamW settings.
        batch_size: minibatch rows.
        val_fraction: share of rows held out for early stopping (none if fewer than 10 rows).
        patience: epochs without validation improvement before stopping (best weights restored).
        ridge_init: relative ridge penalty for the linear path's starting point.
        transport_mode: ``"difference"`` or ``"jvp"`` (see module docstring).
        seed: initialisation, validation split and batch order.

    Learned: ``net_``, ``sx_``, ``sy_``, ``epochs_`` (epochs run), ``best_val_`` (normalised MSE).
    """

    name = "mlp"

    def __init__(self, hidden: int = 512, epochs: int = 200, lr: float = 1e-3,
                 weight_decay: float = 1e-4, batch_size: int = 256, val_fraction: float = 0.1,
                 patience: int = 20, ridge_init: float = 1e-2,
                 transport_mode: str = "difference", seed: int = 0) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.ridge_init = ridge_init
        self.transport_mode = transport_mode
        self.seed = seed

    def params_(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "epochs": self.epochs, "lr": self.lr,
                "weight_decay": self.weight_decay, "batch_size": self.batch_size,
                "val_fraction": self.val_fraction, "patience": self.patience,
                "ridge_init": self.ridge_init, "transport_mode": self.transport_mode,
                "seed": self.seed}

    def _check_params(self) -> None:
        if self.transport_mode not in TRANSPORT_MODES:
            raise AlignmentConfigError(
                f"mlp transport_mode must be one of {TRANSPORT_MODES}, got {self.transport_mode!r}")
        if int(self.hidden) < 1 or int(self.epochs) < 0 or int(self.batch_size) < 1:
            raise AlignmentConfigError(
                f"mlp needs hidden >= 1, epochs >= 0, batch_size >= 1; got {self.params_()}")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise AlignmentConfigError(f"mlp val_fraction must be in [0, 1), got {self.val_fraction}")

    # -- fitting ---------------------------------------------------------------------------------
    def _fit_centered(self, Xc: torch.Tensor, Yc: torch.Tensor, mu_x: torch.Tensor,
                      mu_y: torch.Tensor) -> None:
        self._check_params()
        n, ds = Xc.shape
        dt = Yc.shape[1]
        sx = float((Xc**2).mean().sqrt()) or 1.0
        sy = float((Yc**2).mean().sqrt()) or 1.0
        Xn, Yn = (Xc / sx).float(), (Yc / sy).float()
        g = torch.Generator().manual_seed(int(self.seed))
        perm = torch.randperm(n, generator=g)
        n_val = round(float(self.val_fraction) * n) if n >= 10 else 0
        val, tr = perm[:n_val], perm[n_val:]
        # fork_rng: nn.Linear draws from the global generator; seed it without leaking the change.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            net = _Net(ds, dt, int(self.hidden))
        with torch.no_grad():
            out_layer = net.branch[2]
            assert isinstance(out_layer, nn.Linear)
            out_layer.weight.zero_()
            out_layer.bias.zero_()
            net.linear.weight.copy_(self._ridge(Xn[tr].double(), Yn[tr].double()).T.float())
            net.linear.bias.zero_()
        self.epochs_, self.best_val_ = self._train(net, Xn, Yn, tr, val, g)
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.net_ = net
        self.sx_, self.sy_ = sx, sy

    def _ridge(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        Xm = X - X.mean(0)
        U, s, Vt = torch.linalg.svd(Xm, full_matrices=False)
        lam = float(self.ridge_init) * float((Xm**2).sum()) / X.shape[1]
        return Vt.T @ ((s / (s**2 + lam))[:, None] * (U.T @ (Y - Y.mean(0))))

    def _train(self, net: _Net, X: torch.Tensor, Y: torch.Tensor, tr: torch.Tensor,
               val: torch.Tensor, g: torch.Generator) -> tuple[int, float]:
        opt = torch.optim.AdamW(net.parameters(), lr=float(self.lr),
                                weight_decay=float(self.weight_decay))
        loss_fn = nn.MSELoss()

        def val_loss() -> float:
            with torch.no_grad():
                return float(loss_fn(net(X[val]), Y[val])) if len(val) else float("nan")

        best, best_state, stale, ran = val_loss(), _copy_state(net), 0, 0
        for ran in range(1, int(self.epochs) + 1):  # noqa: B007 - ran is reported after the loop
            net.train()
            order = tr[torch.randperm(len(tr), generator=g)]
            for i in range(0, len(order), int(self.batch_size)):
                idx = order[i:i + int(self.batch_size)]
                opt.zero_grad()
                loss = loss_fn(net(X[idx]), Y[idx])
                loss.backward()
                opt.step()
            if not len(val):
                continue
            cur = val_loss()
            if cur < best - 1e-7:
                best, best_state, stale = cur, _copy_state(net), 0
            else:
                stale += 1
                if stale >= int(self.patience):
                    break
        if len(val):
            net.load_state_dict(best_state)
        return ran, best

    # -- prediction and transport ----------------------------------------------------------------
    def _f(self, x: torch.Tensor) -> torch.Tensor:
        return self.net_((x - self.mu_x_) / self.sx_) * self.sy_ + self.mu_y_

    def _predict(self, X: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._f(X)

    def _transport(self, v: torch.Tensor) -> torch.Tensor:
        if self.transport_mode == "jvp":
            from torch.func import jvp

            return jvp(self._f, (self.mu_x_,), (v,))[1].detach()
        with torch.no_grad():
            return self._f(self.mu_x_ + v) - self._f(self.mu_x_)

    # -- persistence -------------------------------------------------------------------------------
    def state_dict_(self) -> dict[str, torch.Tensor]:
        out = super().state_dict_()
        out.update({f"net.{k}": v.detach().clone() for k, v in self.net_.state_dict().items()})
        out["sx"] = torch.tensor(self.sx_, dtype=torch.float32)
        out["sy"] = torch.tensor(self.sy_, dtype=torch.float32)
        return out

    def _load_state(self, tensors: Mapping[str, torch.Tensor]) -> None:
        super()._load_state(tensors)
        ds, dt, h = self.in_dim, self.out_dim, int(self.hidden)
        net = _Net(ds, dt, h)
        expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        state = {k: need_shape(tensors, f"net.{k}", self.name, shape) for k, shape in expected.items()}
        net.load_state_dict(state)
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.net_ = net
        self.sx_ = float(need_shape(tensors, "sx", self.name, ()))
        self.sy_ = float(need_shape(tensors, "sy", self.name, ()))


def _copy_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}
