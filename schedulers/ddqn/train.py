"""Double DQN training loop for the node scorer.

Why: the scorer must learn which node to give each pod so that the cluster packs more GPU by
the time 130% of its capacity has been requested. Each decision is one step: the state is the
pod plus the feasible nodes' feature rows, the action a node, the reward
``beta * fragmentation_gain(chosen node) - GPUs of pods that then fail (in GPUs)``; the
fragmentation term is a potential-based shaping of the cluster's fragmentation, so greedy on
the immediate reward is FGD and the bootstrapped part learns the longer-term corrections.
Double DQN: the online net picks the next state's best candidate, the target net (Polyak
averaged) values it; n-step returns; epsilon-greedy exploration among the top candidates;
Huber loss; fixed seeds. Writes ``curves.json``, ``curves.png`` and the model file.
With v2 rows (``env.search_features``: FGD-Search's cost per candidate, ``searchfeat.py``) the
net may start from a v1 file (``init_from``, :func:`widen_into`) and from "follow the search"
(``search_prior``, :func:`add_search_prior`); issue 17's "learning when to search".

Neighbours: ``env.py`` (episodes), ``replay.py`` (buffer), ``model.py`` (net + file format),
``__main__.py`` (CLI).
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from controlplane.log import get_logger
from schedulers.ddqn import model as qmodel
from schedulers.ddqn.env import EpisodeSpec, OpenbEnv, select
from schedulers.ddqn.features import FEATURE_NAMES_V2, N_FEATURES_V2
from schedulers.ddqn.replay import Replay

log = get_logger(__name__)

MODEL_FILE = "ddqn_openb.bin"


@dataclass
class TrainConfig:
    episodes: int = 300
    seed: int = 0
    hidden: tuple[int, ...] = (32,)
    gamma: float = 0.99
    n_step: int = 8
    beta: float = 1.0               # weight of the fragmentation-gain reward
    lr: float = 1e-4
    lr_end: float = 2e-5
    batch: int = 128
    learn_start: int = 2000         # steps in the buffer before the first update
    update_every: int = 4
    tau: float = 0.01               # Polyak factor of the target net
    res_l2: float = 1.0             # penalty on the residual (departure from FGD's ranking)
    replay: int = 100_000
    k_candidates: int = 16
    eps_start: float = 0.1
    eps_end: float = 0.02
    eps_top: int = 8                # exploration picks among this many best nodes
    demo_episodes: int = 6          # FGD-driven episodes that seed the buffer
    episode: EpisodeSpec = field(default_factory=EpisodeSpec)
    threads: int = 1
    eval_every: int = 5             # greedy validation episodes every this many episodes
    eval_seeds: tuple[int, ...] = (100_001, 100_002, 100_003, 100_004, 100_005, 100_006)
    max_steps: int | None = None    # CI: stop after this many env steps
    init_from: str | None = None    # start from this model file's weights (v1 into v2: new inputs at 0)
    search_prior: float = 0.0       # v2: one more hidden unit, start as "follow FGD-Search" (add_search_prior)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(env: OpenbEnv, cfg: TrainConfig, out: Path, progress: bool = True) -> dict:
    """Train from scratch; write model, curves JSON and PNG into ``out``; return a summary."""
    out.mkdir(parents=True, exist_ok=True)
    _seed_all(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    hidden = cfg.hidden[:-1] + (cfg.hidden[-1] + 1,) if cfg.search_prior else cfg.hidden
    online = qmodel.QNet(env.n_features, hidden)   # v1 rows, or v2 with the search columns
    if cfg.init_from:
        widen_into(qmodel.load(Path(cfg.init_from))[0], online)
    if cfg.search_prior:
        add_search_prior(online, cfg.search_prior)
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(online.parameters(), lr=cfg.lr)
    buf = Replay(cfg.replay, cfg.k_candidates, env.n_features, seed=cfg.seed)
    curves: list[dict] = []
    steps = updates = 0
    t0, c0 = time.time(), time.process_time()
    fgd_val = [run_episode(env, seed, None) for seed in cfg.eval_seeds] if cfg.eval_every else []
    val: list[dict] = []
    best: tuple[float, int, dict | None] = (-1.0, -1, None)   # (validation alloc, episode, weights)
    bar = tqdm(range(cfg.episodes), desc="ddqn", disable=not progress)
    for ep in bar:
        demo = ep < cfg.demo_episodes
        frac = min(1.0, max(0.0, (ep - cfg.demo_episodes) / max(1, cfg.episodes * 0.7)))
        for g in opt.param_groups:   # linear decay to lr_end over the run
            g["lr"] = cfg.lr + (cfg.lr_end - cfg.lr) * ep / max(1, cfg.episodes - 1)
        eps = cfg.eps_start + (cfg.eps_end - cfg.eps_start) * frac
        env.reset(rng)
        ep_ret, losses = 0.0, []
        while (d := env.next_decision()) is not None:
            if env.pending_penalty and buf.size:
                buf.add_reward(env.take_penalty())
            with torch.no_grad():
                q = online.advantage(torch.from_numpy(d.X)).numpy()
            sc = qmodel.scores(q, d.X[:, 0])
            if demo:
                j = select(np.trunc(d.X[:, 1] * 100 + 1e-6), d.rank)
            elif len(q) > 1 and rng.random() < eps:
                top = np.argsort(-q)[: cfg.eps_top]
                j = int(top[rng.integers(len(top))])
            else:
                j = select(sc, d.rank)
            order = np.argsort(-q)
            others = order[order != j][: cfg.k_candidates - 1]
            cand = np.concatenate([d.X[j:j + 1], d.X[others]], 0)
            r = cfg.beta * float(d.X[j, 0])
            env.place(j)
            buf.push(cand, r, False)
            ep_ret += r
            steps += 1
            if buf.size > cfg.learn_start and steps % cfg.update_every == 0:
                losses.append(_update(online, target, opt, buf, cfg))
                updates += 1
            if cfg.max_steps and steps >= cfg.max_steps:
                break
        if env.pending_penalty:
            buf.add_reward(env.take_penalty())
        buf.mark_done()
        rec = {"episode": ep, "eps": round(eps, 4), "demo": demo, "return": round(ep_ret, 3),
               "alloc": round(env.alloc_pct(), 3), "failed_gpu": round(env.failed_gpu, 2),
               "loss": round(float(np.mean(losses)), 5) if losses else None, "steps": steps,
               "wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1),
               "nodes": env.n_nodes}
        curves.append(rec)
        if cfg.eval_every and (ep + 1) % cfg.eval_every == 0:
            got = [run_episode(env, seed, online) for seed in cfg.eval_seeds]
            val.append({"episode": ep, "ddqn": round(float(np.mean(got)), 3), "fgd": round(float(np.mean(fgd_val)), 3),
                        "per_episode": [round(g - f, 3) for g, f in zip(got, fgd_val)]})
            log.info("ddqn.validation", **val[-1])
            if val[-1]["ddqn"] > best[0]:
                best = (val[-1]["ddqn"], ep, copy.deepcopy(online.state_dict()))
                qmodel.save(online, out / MODEL_FILE, meta={"checkpoint_episode": ep, "validation": val[-1]})
        bar.set_postfix(alloc=rec["alloc"], eps=rec["eps"], loss=rec["loss"], val=val[-1]["ddqn"] - val[-1]["fgd"] if val else None)
        if cfg.max_steps and steps >= cfg.max_steps:
            break
    summary = {"config": _jsonable(asdict(cfg)), "episodes": len(curves), "steps": steps, "updates": updates,
               "wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1),
               "selected_episode": best[1] if best[2] is not None else len(curves) - 1,
               "validation_fgd": round(float(np.mean(fgd_val)), 3) if fgd_val else None,
               "validation_selected": best[0] if best[2] is not None else None}
    if best[2] is not None:   # the checkpoint with the best greedy validation allocation
        online.load_state_dict(best[2])
    qmodel.save(online, out / MODEL_FILE, meta=summary)
    (out / "curves.json").write_text(json.dumps({"summary": summary, "curves": curves, "validation": val}, indent=1))
    _plot(curves, val, out / "curves.png")
    log.info("ddqn.trained", out=str(out), **{k: summary[k] for k in ("episodes", "steps", "wall_s", "cpu_s")})
    return summary


def widen_into(src: qmodel.QNet, dst: qmodel.QNet) -> None:
    """Copy ``src``'s weights into ``dst``, which has the same layers but may read more input
    columns (v1 -> v2: the search columns come last) and have more hidden units. The extra
    weights are 0, so ``dst`` scores exactly like ``src`` until training moves them."""
    if len(src.hidden) != len(dst.hidden) or src.n_in > dst.n_in or any(a > b for a, b in zip(src.hidden, dst.hidden)):
        raise ValueError(f"cannot widen a {src.n_in}-input {src.hidden} net into a {dst.n_in}-input {dst.hidden} one")
    sd = dst.state_dict()
    with torch.no_grad():
        for name, w in src.state_dict().items():
            t = sd[name]
            t.zero_()
            t[tuple(slice(0, n) for n in w.shape)].copy_(w)   # new inputs / units come last
    dst.load_state_dict(sd)


def add_search_prior(net: qmodel.QNet, c: float) -> None:
    """Make the residual's last hidden unit ``relu(search_keep)`` with output weight ``c``:
    a node FGD-Search keeps gets ``trunc(25 c)`` more score units (c = 0.045: one unit), so
    the net starts close to "always follow the search" and training learns where not to.
    The unit must be unused (zero weights, e.g. added by :func:`widen_into`)."""
    if len(net.hidden) != 1 or net.n_in != N_FEATURES_V2:
        raise ValueError("the search prior needs a v2 net with one hidden layer")
    keep = FEATURE_NAMES_V2.index("search_keep")
    first, last = net.residual[0], net.residual[-1]
    with torch.no_grad():
        if first.weight[-1].abs().sum() or last.weight[0, -1]:
            raise ValueError("the residual's last hidden unit is in use")
        first.weight[-1, keep] = 1.0
        first.bias[-1] = 0.0
        last.weight[0, -1] = c


def run_episode(env: OpenbEnv, seed: int, net: qmodel.QNet | None) -> float:
    """Greedy episode (FGD's scores when ``net`` is None); returns GPU allocated % at 130%."""
    env.reset(np.random.default_rng(seed))
    while (d := env.next_decision()) is not None:
        if net is None:
            sc = np.trunc(d.X[:, 1].astype(np.float64) * 100 + 1e-6)
        else:
            with torch.no_grad():
                sc = qmodel.scores(net.advantage(torch.from_numpy(d.X)), d.X[:, 0])
        env.place(select(sc, d.rank))
    return env.alloc_pct()


def _update(online: qmodel.QNet, target: qmodel.QNet, opt: torch.optim.Optimizer, buf: Replay, cfg: TrainConfig) -> float:
    b = buf.sample(cfg.batch, cfg.n_step, cfg.gamma)
    x, m = torch.from_numpy(b.x), torch.from_numpy(b.m)
    x_next, m_next = torch.from_numpy(b.x_next), torch.from_numpy(b.m_next)
    with torch.no_grad():
        a_star = online.advantage(x_next).masked_fill(~m_next, -1e9).argmax(1, keepdim=True)   # Double DQN
        q_tg = target.q_all(x_next, m_next).gather(1, a_star).squeeze(1)
        y = torch.from_numpy(b.ret) + torch.from_numpy(b.disc) * q_tg
    q = online.q_all(x, m)[:, 0]
    loss = torch.nn.functional.smooth_l1_loss(q, y)
    if cfg.res_l2:
        # keep the node-dependent correction small unless the returns insist (FGD prior)
        res = online.residual(x[m])
        loss = loss + cfg.res_l2 * res.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(online.parameters(), 10.0)
    opt.step()
    with torch.no_grad():
        for pt, po in zip(target.parameters(), online.parameters()):
            pt.mul_(1 - cfg.tau).add_(po, alpha=cfg.tau)
    return float(loss.detach())


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)))


def _plot(curves: list[dict], val: list[dict], path: Path) -> None:
    """Training curves: per-episode allocation, return, TD loss, and the greedy validation
    allocation against FGD on the same held-out episodes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [c["episode"] for c in curves]
    fig, ax = plt.subplots(1, 4, figsize=(18, 3.6))
    ax[0].plot(ep, [c["alloc"] for c in curves])
    ax[0].set_title("training episode: GPU allocated at 130% (%)")
    ax[1].plot(ep, [c["return"] for c in curves])
    ax[1].set_title("episode return")
    ax[2].plot(ep, [c["loss"] if c["loss"] is not None else np.nan for c in curves])
    ax[2].set_title("TD loss (Huber + residual L2)")
    if val:
        ax[3].plot([v["episode"] for v in val], [v["ddqn"] for v in val], "o-", label="DDQN (greedy)")
        ax[3].plot([v["episode"] for v in val], [v["fgd"] for v in val], "--", label="FGD")
        ax[3].legend()
    ax[3].set_title("validation episodes: alloc at 130% (%)")
    for a in ax:
        a.set_xlabel("episode")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
