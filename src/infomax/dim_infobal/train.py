"""Study B's pre-training loop: DIM and InfoBal (self-supervised), with the per-epoch curves.

Same design as study A's loop (data on the device as uint8, index-slice batches, no host sync
per step, resume states: ``infomax.loop``).  ``step`` is shared with ``infomax bench``.
"""

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..data import load_prepared, stratified_part
from ..estimators import MI_ESTIMATORS
from ..files import save_torch
from ..loop import (PRECISION_CHOICES, DivergenceGuard, Session, Speed, apply_speed, autocast, load_checkpoint,
                    maybe_compile, resolve_device, resolve_precision, restore_rng, resume_key, resume_path, rng_state)
from ..probes import probe_accuracy, train_probe
from .evaluate import encoder_features
from .model import DIMNet, InfoBalNet
from .objectives import dim_input, dim_losses, infobal_losses, prior_sample

MODEL_FORMAT = "infomax-dim_infobal-model-v1"
OLDER_FORMATS = ("infomax-infobal-model-v1",)     # the same format, named before study B was renamed
# Method kinds; "random" is the untrained encoder every method is judged against (added by the
# workflow, never a kind a config defines).  Each kind's options and their values are the
# config's `dim_infobal.kinds` block (DIM's alpha, beta, gamma; InfoBal's views, target, ...).
KINDS = ("dim_g", "dim_l", "infobal", "random")


@dataclass
class TrainConfig:
    """One study-B training job.  The train block, the kind's options (``dim_infobal.kinds``) and
    the method's own overrides, all from the config: no defaults here.  The options of the other
    kinds stay None (they do not exist for this model)."""

    method: str                             # the name in the config (file names, tables)
    kind: str                               # dim_g | dim_l | infobal | random (untrained encoder)
    estimator: str                          # jsd | dv | nce; "none" for random
    seed: int
    epochs: int
    batch_size: int
    lr: float
    adam_betas: tuple
    adversary_lr: float                     # prior discriminator / InfoMin adversary / CLUB's q
    y_dim: int
    fc_units: int
    local_units: int                        # encode-and-dot units
    global_hidden: int
    prior_hidden: tuple
    view_dim: int
    infomin_hidden: int
    infomin_units: int
    lam_warmup_epochs: float                # lambda ramps linearly from 0 over these epochs
    curve_every: int                        # epochs between curve points (and loss read-outs)
    curve_probe_images: int                 # train images for the curve's probe (scored on val)
    curve_val_images: int | None            # the curve's fixed stratified part of val (None: all of it)
    curve_probe_epochs: int
    curve_probe_lr: float
    checkpoint_seconds: float
    precision: str                          # auto, float32, or bfloat16 autocast of matmuls and convolutions
                                            # (train() resolves auto for its device: infomax.loop)
    global_weight: float | None = None      # DIM kinds (alpha, beta, gamma of Hjelm et al.)
    local_weight: float | None = None
    prior_weight: float | None = None
    views: int | None = None                # InfoBal: horizontal bands of the local map
    target: str | None = None               # "x": I(X; V_i) (local); "r": I(R; V_i) (global/local InfoBal)
    infomin: str | None = None              # "adversary" or "club"
    lam: float | None = None
    view_weights: tuple | None = None
    pair_weights: tuple | None = None

    def __post_init__(self):
        if self.precision not in PRECISION_CHOICES:
            raise ValueError(f"precision {self.precision!r}: expected one of {', '.join(PRECISION_CHOICES)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        allowed = ["none"] if self.kind == "random" else list(MI_ESTIMATORS)
        if self.estimator not in allowed:
            raise ValueError(f"estimator {self.estimator!r} for kind {self.kind!r}: expected one of {', '.join(allowed)}")
        self.adam_betas = tuple(self.adam_betas)
        self.prior_hidden = tuple(self.prior_hidden)
        # the options each kind needs (InfoBal's view and pair weights may stay None: equal weights)
        dim = ("global_weight", "local_weight", "prior_weight")
        need = {"dim_g": dim, "dim_l": dim, "infobal": ("views", "target", "infomin", "lam")}
        lacking = [k for k in need.get(self.kind, ()) if getattr(self, k) is None]
        if lacking:
            raise ValueError(f"method {self.method!r} (kind {self.kind}): missing option(s) {', '.join(lacking)} "
                             f"(the config's dim_infobal.kinds.{self.kind} block sets them)")
        if self.kind == "infobal":
            n_pairs = self.views * (self.views - 1) // 2
            for name, n in (("view_weights", self.views), ("pair_weights", n_pairs)):
                w = getattr(self, name)
                if w is not None:
                    if len(w) != n:
                        raise ValueError(f"{name} has {len(w)} entries; expected {n} for {self.views} views")
                    setattr(self, name, tuple(float(v) for v in w))
        if self.batch_size < 2:
            raise ValueError(f"batch_size {self.batch_size}: the estimators need >= 2 (negatives are the other images)")


def build_net(cfg: TrainConfig, in_ch: int):
    if cfg.kind == "infobal":
        return InfoBalNet(in_ch, cfg.views, cfg.view_dim, cfg.fc_units, cfg.y_dim, cfg.local_units, cfg.target,
                          cfg.infomin, cfg.infomin_hidden, cfg.infomin_units)
    w = (0.0, 0.0, 0.0) if cfg.kind == "random" else (cfg.global_weight, cfg.local_weight, cfg.prior_weight)
    return DIMNet(in_ch, *w, y_dim=cfg.y_dim, fc_units=cfg.fc_units, local_units=cfg.local_units,
                  global_hidden=cfg.global_hidden, prior_hidden=cfg.prior_hidden)


def losses_of(net, cfg: TrainConfig, out: dict, lam: float, prior=None):
    """(encoder loss, adversary loss, InfoMax estimate, InfoMin term) of one batch (``prior``: DIM's
    prior sample, ``draw_prior``)."""
    if cfg.kind == "infobal":
        return infobal_losses(net, out, cfg.estimator, lam, cfg.view_weights, cfg.pair_weights)
    loss, adv, mi = dim_losses(net, out, cfg.estimator, cfg.global_weight, cfg.local_weight, cfg.prior_weight, prior)
    return loss, adv, mi, torch.zeros_like(mi)


@torch.no_grad()
def curve_point(net, cfg: TrainConfig, data, probe_idx, lam: float) -> dict:
    """The InfoMax estimate on the validation split (eval mode, batches of batch_size) and the
    post's probe (linear, curve_probe_epochs) on y, trained on a fixed train subset, scored on val."""
    (xtr, ytr), (xva, yva) = data.splits["train"], data.splits["val"]
    was_training = net.training
    net.eval()
    # One pass over val: every image's y for the probe, the estimate on the full batches only
    # (the estimators' bias depends on the batch size).
    b = min(cfg.batch_size, xva.shape[0])
    ys, mis, mins = [], [], []
    for i in range(0, xva.shape[0], b):
        out = net(dim_input(xva[i:i + b]))
        ys.append(out["y"])
        if cfg.kind != "random" and out["y"].shape[0] == b:    # the random encoder has no critic
            _, _, mi, mn = losses_of(net, cfg, out, lam)
            mis.append(mi)
            mins.append(mn)
    net.train(was_training)
    f_va = torch.cat(ys)
    f_tr = encoder_features(net, xtr[probe_idx], layers=("y",))["y"]
    estimate = torch.stack(mis).mean().item() if mis else math.nan
    infomin = torch.stack(mins).mean().item() if mins else math.nan
    predict = train_probe(f_tr, ytr[probe_idx], "linear", cfg.curve_probe_epochs, cfg.curve_probe_lr,
                          cfg.batch_size, cfg.seed, classes=data.classes)
    return {"mi_estimate": estimate, "infomin": infomin, "probe_acc": probe_accuracy(predict, f_va, yva)}


def build(cfg: TrainConfig, in_ch: int, device):
    """The net and its two optimisers of a study-B job, initialised from ``cfg.seed``: one Adam for
    the encoder with its InfoMax critics, one for the adversary (None when the net has none)."""
    torch.manual_seed(cfg.seed)
    net = build_net(cfg, in_ch).to(device)
    adv_params = list(net.adversary.parameters()) if getattr(net, "adversary", None) is not None else []
    adv_ids = {id(p) for p in adv_params}
    main_params = [p for p in net.parameters() if id(p) not in adv_ids]
    fused = device.type in ("cpu", "cuda")
    opt = torch.optim.Adam(main_params, lr=cfg.lr, betas=cfg.adam_betas, fused=fused)
    opt_adv = torch.optim.Adam(adv_params, lr=cfg.adversary_lr, betas=cfg.adam_betas, fused=fused) if adv_params else None
    return net, opt, opt_adv


def draw_prior(cfg: TrainConfig, batch: int, device, gen):
    """The step's random numbers, drawn before the forward pass: DIM's prior sample when the kind
    matches a prior (prior_weight > 0), else None (InfoBal and the other kinds draw nothing)."""
    if cfg.kind in ("dim_g", "dim_l") and cfg.prior_weight > 0:
        return prior_sample(batch, cfg.y_dim, device, gen)
    return None


def forward(net, cfg: TrainConfig, x, lam: float, prior=None):
    """(encoder loss, adversary loss, InfoMax estimate, InfoMin term) of one batch of uint8 images
    x (B, C, H, W), scaled to [-1, 1] and padded to 32x32 on the device; ``prior``: ``draw_prior``'s.
    No random draw and no host sync inside, so torch.compile makes it one graph."""
    return losses_of(net, cfg, net(dim_input(x)), lam, prior)


def step(net, opt, opt_adv, cfg: TrainConfig, x, lam: float, gen=None, forward=forward) -> torch.Tensor:
    """One training step on the batch x; returns (encoder loss, adversary loss, InfoMax, InfoMin)
    stacked and detached, on the device (no host sync).  The step's random numbers come from
    ``gen`` first (``draw_prior``); the forward (encoder, critics, adversary) runs in the config's
    precision; the backward follows its dtypes."""
    prior = draw_prior(cfg, x.shape[0], x.device, gen)
    with autocast(x.device, cfg.precision):
        loss, adv, mi, infomin = forward(net, cfg, x, lam, prior)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if opt_adv is not None:
        # the encoder's backward also left gradients in the adversary: drop them, then
        # step the adversary on its own loss (built from detached features)
        opt_adv.zero_grad(set_to_none=True)
        adv.backward()
        opt_adv.step()
    return torch.stack([loss.detach(), adv.detach(), mi.detach(), infomin.detach()])


# Divergence of an InfoMax estimate.  The least value: the floor of the quantity its estimator
# targets (``MI_ESTIMATORS[..].floor``; the critic maximises the estimate, so a working run never
# lands far below it).  The most: the MI of an image X drawn from n training images and any Y is at
# most H(X) = log n (JSD's form is <= 0 and infoNCE's <= log N by construction; DV is unbounded above).
# MI_MARGIN: nats beyond those bounds before a run counts as diverged.  An untrained critic's scores
# are large (dot products of wide features), so a healthy estimate starts far below the floor: on
# quick, DV training estimates of -62 nats at step 2 and validation estimates down to -32 nats (JSD
# -25) are normal.  A diverged run leaves by orders of magnitude (lr 10: -1e11 to -4.5e24 nats).
MI_MARGIN = 1000.0


def mi_bounds(estimator: str, n_train: int) -> tuple[float, float]:
    """(lowest, highest) InfoMax estimate in nats a run of ``estimator`` can reach before it counts as diverged."""
    return MI_ESTIMATORS[estimator].floor - MI_MARGIN, math.log(max(n_train, 2)) + MI_MARGIN


def guard_step(guard: DivergenceGuard, terms: torch.Tensor, bounds: tuple[float, float]):
    """Per-step checks of study B on the device: finite terms, and an InfoMax estimate inside what
    the estimator can reach (``mi_bounds``)."""
    guard.check_finite("finite", terms, "a loss or estimate is not finite")
    lo, hi = bounds
    mi = terms[2]
    guard.check("mi", mi, (mi < lo) | (mi > hi),
                f"the training MI estimate left [{lo:.4g}, {hi:.4g}] nats, beyond any value its estimator can reach")
    guard.tick()


def guard_curve(guard: DivergenceGuard, epoch: int, point: dict, bounds: tuple[float, float]):
    """Checks of a curve point (validation MI estimate, probe accuracy), read on the host."""
    lo, hi = bounds
    mi = point["mi_estimate"]
    if not math.isnan(mi) and not lo <= mi <= hi:
        guard.fail(epoch, f"the validation MI estimate {mi:.4g} nats left [{lo:.4g}, {hi:.4g}]")
    if not math.isfinite(point["probe_acc"]):
        guard.fail(epoch, f"the curve probe's accuracy is {point['probe_acc']}")


def train(cfg: TrainConfig, data_path, out_path, device="auto", progress=True,
          speed: Speed | None = None, data_settings: dict | None = None) -> dict:
    """Pre-train one study-B model (DIM or InfoBal) and write its checkpoint to ``out_path``.

    Two Adam optimisers: the encoder with its InfoMax critics (they maximise the same estimate),
    and the adversary (prior discriminator, InfoMin discriminator or CLUB's q) on its own loss.
    Curve points (epoch 0 = at initialisation) go into the checkpoint's "curves".  Kind "random"
    trains nothing: it is DIM's encoder as the seed initialises it (BatchNorm statistics included),
    the same state every DIM run of that seed starts from, and the floor for the probes.
    ``data_settings``: the config's data block the prepared file must be made from (``load_prepared``)."""
    out_path = Path(out_path)
    device = resolve_device(device) if isinstance(device, str) else device
    asked = cfg.precision
    precision, why = resolve_precision(asked, device)            # once per job
    print(f"{out_path.stem}: training in {precision} on {device.type} ({why})", flush=True)
    cfg = replace(cfg, precision=precision)                      # the resume key and checkpoint hold what ran
    data = load_prepared(data_path, device, data_settings)
    x_all = data.splits["train"][0]
    n = x_all.shape[0]
    steps_per_epoch = n // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the train split ({n} images) of {data_path}")
    if data.splits["val"][0].shape[0] < 2:
        raise ValueError(f"{data_path}: the validation split needs >= 2 images for the curves")
    data.splits["val"] = stratified_part(*data.splits["val"], cfg.curve_val_images)  # what the curves score

    used = apply_speed(speed, device)
    fwd = maybe_compile(forward, used, device)
    net, opt, opt_adv = build(cfg, data.image_shape[0], device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    probe_idx = torch.randperm(n, device=device, generator=gen)[:min(cfg.curve_probe_images, n)]
    epochs = 0 if cfg.kind == "random" else cfg.epochs

    def lam_at(epoch_float):
        if cfg.lam is None:                         # DIM kinds have no InfoMin term
            return 0.0
        if cfg.lam_warmup_epochs <= 0:
            return cfg.lam
        return cfg.lam * min(1.0, epoch_float / cfg.lam_warmup_epochs)

    key = resume_key(cfg, data_path, MODEL_FORMAT, device)
    session = Session(resume_path(out_path), key, out_path.name, device, cfg.checkpoint_seconds, resumable=epochs > 0)
    bounds = mi_bounds(cfg.estimator, n) if epochs else (-math.inf, math.inf)
    history, curves = [], []
    if (state := session.state) is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if opt_adv is not None:
            opt_adv.load_state_dict(state["opt_adv"])
        restore_rng(state, gen, device)
        history, curves = state["history"], state["curves"]

    def resume_state():
        return {"model": net.state_dict(), "opt": opt.state_dict(),
                "opt_adv": opt_adv.state_dict() if opt_adv is not None else None, **rng_state(gen, device),
                "history": history, "curves": curves}

    if session.start_epoch == 0:
        curves.append({"epoch": 0, **curve_point(net, cfg, data, probe_idx, lam_at(0.0))})
    net.train()
    sums = torch.zeros(4, device=device)            # encoder loss, adversary loss, InfoMax, InfoMin
    summed = 0
    bar = session.epochs(epochs, out_path.stem, progress)
    for epoch in bar:
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(steps_per_epoch):
            x = x_all[perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]]
            terms = step(net, opt, opt_adv, cfg, x, lam_at(epoch + i / steps_per_epoch), gen, fwd)
            guard_step(session.guard, terms, bounds)
            sums += terms
        summed += steps_per_epoch
        if (epoch + 1) % cfg.curve_every == 0 or epoch + 1 == epochs:
            total, adv_m, mi_m, min_m = (sums / summed).tolist()           # the one host sync
            sums.zero_()
            summed = 0
            session.guard.raise_if_diverged(epoch + 1)
            history.append({"epoch": epoch + 1, "loss": total, "adversary_loss": adv_m,
                            "train_mi": mi_m, "train_infomin": min_m})
            point = {"epoch": epoch + 1, **curve_point(net, cfg, data, probe_idx, lam_at(epoch + 1.0))}
            guard_curve(session.guard, epoch + 1, point, bounds)
            curves.append(point)
            bar.set_postfix(loss=f"{total:.3f}", mi=f"{point['mi_estimate']:.3f}", probe=f"{point['probe_acc']:.3f}")
        session.checkpoint(epoch + 1, resume_state)
    train_seconds = session.finish()
    summary = {"format": MODEL_FORMAT, "config": asdict(cfg), "in_channels": data.image_shape[0],
               "train_seconds": train_seconds, "history": history, "curves": curves, "data": str(data_path),
               "data_sha256": key["data_sha256"],
               "device": str(device), "torch": str(torch.__version__), "speed": used,
               "precision": {"asked": asked, "used": precision, "why": why}}
    save_torch({**summary, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}, out_path)
    session.done()
    return summary


def load_model(path, device="cpu", data=None):
    """The study-B net of a checkpoint, in eval mode, and the checkpoint's summary (``data``:
    (prepared file, its digest) it must have been trained on: ``loop.load_checkpoint``)."""
    ckpt = load_checkpoint(path, MODEL_FORMAT, "study-B (dim_infobal)", device, older=OLDER_FORMATS, data=data)
    cfg = TrainConfig(**ckpt["config"])
    net = build_net(cfg, ckpt["in_channels"])
    net.load_state_dict(ckpt["state_dict"])
    return net.to(device).eval(), {k: v for k, v in ckpt.items() if k != "state_dict"}
