"""Train the pf-scene diffusion model on the CPU (docs/model.md).

Reproducible from --seed for a fixed --steps (torch + numpy seeds, deterministic data order, 2 threads);
--time-limit is a safety net that stops cleanly (and exports) if the machine is slower than planned.

  /usr/bin/python3 tools/train/train.py --data tools/train/data --steps 3000 --time-limit 2700 \
      --out models/pf-scene-v3.safetensors --card models/pf-scene-v3.json
  /usr/bin/python3 tools/train/train.py --synthetic --steps 20     # time the loop on random tensors
"""
import argparse
import copy
import hashlib
import json
import math
import os
import signal
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import SLOTS, T, UNet, alpha_bar_schedule, save_model  # noqa: E402

SLOT_KEYS = {
    "background": ("background", "backgrounds"),
    "object": ("object", "objects"),
    "colour": ("colour", "colours", "color", "colors"),
    "motion": ("motion", "motions"),
}


def find_vocab(meta):
    """Vocabulary lists (index order, without the 0 = none entry) from dataset.json."""
    cands = [meta]
    for k in ("vocabulary", "vocab", "vocabularies", "slots"):
        if isinstance(meta.get(k), dict):
            cands.insert(0, meta[k])
    vocab = {}
    for slot, keys in SLOT_KEYS.items():
        for c in cands:
            hit = next((c[k] for k in keys if isinstance(c.get(k), list)), None)
            if hit is not None:
                vocab[slot] = [x if isinstance(x, str) else (x.get("name") or json.dumps(x)) for x in hit]
                break
        if slot not in vocab:
            raise SystemExit(f"dataset.json: no vocabulary list for slot '{slot}' (keys: {list(meta)})")
    return vocab


class Data:
    def __init__(self, frames, labels, vocab, meta=None, masks=None, layouts=None):
        self.frames = frames  # uint8 [clips, F, 64, 64, 3]
        self.masks = masks  # uint8 [clips, F, 64, 64], 1 where the object's body is drawn, or None
        self.layouts = layouts  # uint8 [clips, F, 64, 64], 255 * coverage of the object's planned box, or None
        self.labels = labels  # int32 [clips, 4], 1-based
        self.vocab = vocab
        self.meta = meta or {}
        self.clips, self.F = frames.shape[:2]

    def weights(self, c, f, object_weight):
        """Per-pixel loss weights [n, 1, 64, 64]: the object is a few percent of the frame, and where it is and which
        colour it has is what the prompt asks for, so its pixels count object_weight times."""
        if self.masks is None or object_weight == 1.0:
            return None
        m = torch.from_numpy(self.masks[c, f]).float()[:, None]
        return 1.0 + (object_weight - 1.0) * m

    @staticmethod
    def load(d):
        with open(os.path.join(d, "dataset.json")) as f:
            meta = json.load(f)
        vocab = find_vocab(meta)
        labels = np.fromfile(os.path.join(d, "labels.i32"), dtype="<i4").reshape(-1, 4)
        clips = labels.shape[0]
        raw = np.fromfile(os.path.join(d, "frames.u8"), dtype=np.uint8)
        per = 64 * 64 * 3
        assert raw.size % (clips * per) == 0, "frames.u8 size does not match labels.i32"
        frames = raw.reshape(clips, raw.size // (clips * per), 64, 64, 3)
        mp = os.path.join(d, "masks.u8")
        masks = np.fromfile(mp, dtype=np.uint8).reshape(frames.shape[:4]) if os.path.exists(mp) else None
        lp = os.path.join(d, "layout.u8")
        layouts = np.fromfile(lp, dtype=np.uint8).reshape(frames.shape[:4]) if os.path.exists(lp) else None
        for i, s in enumerate(SLOTS):
            lo, hi = labels[:, i].min(), labels[:, i].max()
            assert 1 <= lo and hi <= len(vocab[s]), f"labels for {s} out of range [{lo},{hi}]"
        return Data(frames, labels, vocab, meta, masks, layouts)

    @staticmethod
    def synthetic(clips=512, F_=16, seed=0):
        r = np.random.default_rng(seed)
        vocab = {s: [f"{s}{i}" for i in range(1, 9)] for s in SLOTS}
        frames = r.integers(0, 256, size=(clips, F_, 64, 64, 3), dtype=np.uint8)
        labels = r.integers(1, 9, size=(clips, 4)).astype(np.int32)
        return Data(frames, labels, vocab, {"synthetic": True})

    def img(self, c, f):
        x = torch.from_numpy(self.frames[c, f])  # [n, 64, 64, 3] uint8
        return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0).contiguous()

    def batch(self, rng, n, p_uncond=0.15, p_slot=0.1, object_weight=1.0):
        """One training batch per the recipe. rng: numpy Generator (all data choices come from it).

        p_uncond drops the whole prompt (classifier-free guidance); p_slot drops single slots, because a prompt that
        names no motion or no colour is normal and the engine passes 0 for the open slot."""
        F_ = self.F
        c = rng.integers(0, self.clips, size=n)
        inb = rng.random(n) < 0.5
        if F_ < 3:
            inb[:] = False
        f = rng.integers(0, F_, size=n)
        gmax = min(8, F_ - 1)
        d = rng.integers(2, gmax + 1, size=n)
        a = (rng.random(n) * (F_ - d)).astype(np.int64)  # a in [0, F-1-d]
        fi = a + 1 + (rng.random(n) * (d - 1)).astype(np.int64)  # a < fi < a + d
        f = np.where(inb, fi, f)
        a = np.where(inb, a, 0)
        b = np.where(inb, a + d, 0)
        x0 = self.img(c, f)
        mk = torch.from_numpy(inb.astype(np.float32))
        A = self.img(c, a) * mk[:, None, None, None]
        B = self.img(c, b) * mk[:, None, None, None]
        alpha = torch.from_numpy(np.where(inb, (f - a) / np.maximum(b - a, 1), 0.0).astype(np.float32))
        s = torch.from_numpy((f / max(F_ - 1, 1)).astype(np.float32))
        slots = torch.from_numpy(self.labels[c].astype(np.int64))
        drop = torch.from_numpy(rng.random(n) < p_uncond)
        slots[drop] = 0
        slots[torch.from_numpy(rng.random((n, 4)) < p_slot)] = 0
        layout = self.layout(c, f)
        layout[drop] = 0  # the unconditional branch of guidance has no plan either
        t = torch.from_numpy(rng.integers(0, T, size=n).astype(np.int64))
        return x0, A, B, t, slots, s, alpha, mk, layout, self.weights(c, f, object_weight)

    def layout(self, c, f):
        """The object's planned box [n, 1, 64, 64] in [0, 1] (zeros without layout.u8)."""
        if self.layouts is None:
            return torch.zeros(len(c), 1, 64, 64)
        return torch.from_numpy(self.layouts[c, f]).float().div_(255.0)[:, None].contiguous()


def lr_at(step, warmup, peak, progress, floor=0.05):
    """Linear warmup over `warmup` steps, then cosine decay to floor*peak as progress goes 0 -> 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def ema_update(ema, model, decay):
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


@torch.no_grad()
def eval_loss(model, data, ab, n=256, bs=64, seed=999):
    """v-prediction MSE on a fixed, seeded set of samples (same recipe, no CFG dropout)."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    model.eval()
    tot = 0.0
    for i in range(0, n, bs):
        x0, A, B, t, slots, s, alpha, m, layout, _ = data.batch(rng, bs, p_uncond=0.0, p_slot=0.0)
        eps = torch.randn(x0.shape, generator=g)
        a = ab[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        v = a.sqrt() * eps - (1 - a).sqrt() * x0
        tot += F.mse_loss(model(xt, A, B, t, slots, s, alpha, m, layout), v).item() * bs
    model.train()
    return tot / n


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="tools/train/data")
    ap.add_argument("--synthetic", action="store_true", help="random tensors instead of ClipGen data")
    ap.add_argument("--out", default="models/pf-scene-v3.safetensors")
    ap.add_argument("--card", default="models/pf-scene-v3.json")
    ap.add_argument("--channels", default="48,96,96")
    ap.add_argument("--emb-dim", type=int, default=128)
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--object-weight", type=float, default=5.0, help="loss weight of object pixels (masks.u8)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=2700.0, help="seconds of training before a clean stop")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--ckpt", default=None, help="checkpoint path (default DATA/ckpt.pt)")
    ap.add_argument("--recipe", default="", help="data recipe (ClipGen command) for the model card")
    ap.add_argument("--data-seconds", type=float, default=0.0, help="data generation wall time, for the card")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t_start = time.time()

    data = Data.synthetic() if args.synthetic else Data.load(args.data)
    print(f"data: {data.clips} clips x {data.F} frames; vocab sizes "
          f"{ {s: len(data.vocab[s]) for s in SLOTS} }; threads {torch.get_num_threads()}; "
          f"mkldnn {torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}", flush=True)

    cfg = {
        "channels": [int(c) for c in args.channels.split(",")],
        "groups": args.groups,
        "emb_dim": args.emb_dim,
        "vocab_sizes": {s: len(data.vocab[s]) for s in SLOTS},
    }
    model = UNet(cfg)
    model.train()
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    nparams = sum(p.numel() for p in model.parameters())
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in n_ or "prompt_emb" in n_ or n_ == "pos_emb" else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.99))
    ab = alpha_bar_schedule()
    print(f"model: {nparams} params, config {json.dumps(model.config)}", flush=True)

    ckpt = args.ckpt or (os.path.join(args.data, "ckpt.pt") if not args.synthetic else None)
    loss_ema = None
    step = 0
    t_train = time.time()
    stopped = "steps"
    time_bound_at = None
    stop_req = []  # SIGTERM/SIGINT: finish the current step, then evaluate and export as usual
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop_req.append(signum))
    while step < args.steps:
        if stop_req:
            stopped = "signal"
            print(f"stop requested (signal {stop_req[0]}) at step {step}", flush=True)
            break
        # Progress of the cosine schedule: by steps (bit-reproducible) unless the machine is too slow to finish
        # --steps within --time-limit; then the schedule follows the clock so the run still ends annealed.
        el = time.time() - t_train
        w = args.warmup / args.steps
        p_steps = max(0.0, (step / args.steps - w) / (1 - w))
        q_time = el / args.time_limit
        p_time = max(0.0, (q_time - w) / (1 - w))
        if q_time >= 1.0:
            stopped = "time-limit"
            print(f"time limit reached at step {step}", flush=True)
            break
        # Judged on the pace so far, after enough steps that the slower first steps do not decide it alone.
        if step >= 4 * args.warmup and el * args.steps / step > args.time_limit and time_bound_at is None:
            time_bound_at = step
            print(f"note: schedule follows the clock from step {step} (machine slower than planned; "
                  f"this run is not bit-reproducible)", flush=True)
        progress = p_steps if time_bound_at is None else max(p_steps, p_time)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.warmup, args.lr, progress)
        x0, A, B, t, slots, s, alpha, m, layout, w = data.batch(rng, args.batch, object_weight=args.object_weight)
        eps = torch.randn_like(x0)
        a = ab[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        v = a.sqrt() * eps - (1 - a).sqrt() * x0
        err = (model(xt, A, B, t, slots, s, alpha, m, layout) - v) ** 2
        loss = err.mean() if w is None else (err * w).sum() / (w.sum() * err.shape[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema_update(ema, model, min(args.ema, (1 + step) / (10 + step)))
        li = loss.item()
        loss_ema = li if loss_ema is None else 0.98 * loss_ema + 0.02 * li
        if step % args.log_every == 0 or step == 1:
            el = time.time() - t_train
            print(f"step {step:5d}/{args.steps} loss {li:.4f} ema_loss {loss_ema:.4f} "
                  f"lr {opt.param_groups[0]['lr']:.2e} {step / el:.3f} steps/s "
                  f"{step * args.batch / el:.1f} img/s elapsed {el:.0f}s", flush=True)
        if ckpt and step % 500 == 0:
            torch.save({"step": step, "model": model.state_dict(), "ema": ema.state_dict()}, ckpt)

    train_seconds = time.time() - t_train
    ev_model = eval_loss(model, data, ab)
    ev_ema = eval_loss(ema, data, ab)
    print(f"done: {step} steps in {train_seconds:.0f}s ({stopped}); train ema_loss {loss_ema:.4f}; "
          f"eval loss raw {ev_model:.4f} ema-weights {ev_ema:.4f}", flush=True)
    final = ema if ev_ema <= ev_model else model
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_model(final, args.out)
    digest = sha256(args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, sha256 {digest})", flush=True)
    if args.card:
        card = {
            "name": f"{model.config['name']}-v{model.config['version']}",
            "weights": os.path.basename(args.out),
            "sha256": digest,
            "architecture": model.config,
            "parameters": nparams,
            "contract": "docs/model.md",
            "vocabulary": {s: data.vocab[s] for s in SLOTS},
            "vocabulary_note": "slot index 0 = none; index i >= 1 = vocabulary[slot][i-1]",
            "data": {
                "recipe": args.recipe or ("synthetic random tensors" if args.synthetic else args.data),
                "clips": int(data.clips), "frames_per_clip": int(data.F), "size": 64,
                "generation_seconds": round(args.data_seconds, 1),
            },
            "training": {
                "seed": args.seed, "steps": step, "planned_steps": args.steps, "stopped_by": stopped,
                "schedule_time_bound_from_step": time_bound_at,
                "lr_schedule_followed": ("steps (bit-reproducible from the seed)" if time_bound_at is None
                                         else f"wall clock from step {time_bound_at} (fallback; not bit-reproducible)"),
                "command": "/usr/bin/python3 " + " ".join(sys.argv),
                "batch": args.batch, "samples_seen": step * args.batch,
                "optimizer": f"AdamW lr {args.lr} betas (0.9,0.99) wd {args.wd}, warmup {args.warmup} + cosine to 5%",
                "grad_clip": 1.0, "ema_decay": args.ema, "cfg_dropout": 0.15, "slot_dropout": 0.1,
                "object_loss_weight": args.object_weight if data.masks is not None else 1.0,
                "recipe": "50% keyframe / 50% in-between (keyframes a<f<b, 2<=b-a<=8), s=f/(F-1), v-prediction MSE "
                          "with object pixels (masks.u8) weighted object_loss_weight, t ~ U[0,1000); eval loss unweighted",
                "threads": torch.get_num_threads(),
                "train_seconds": round(train_seconds, 1),
                "wall_seconds_including_data": round(time.time() - t_start + args.data_seconds, 1),
                "final_train_loss_ema": round(loss_ema, 5),
                "eval_loss_raw_weights": round(ev_model, 5),
                "eval_loss_exported_weights": round(min(ev_ema, ev_model), 5),
                "exported_weights": "ema" if final is ema else "raw",
                "hardware": "2-core x86-64 CPU, PyTorch " + torch.__version__,
            },
        }
        with open(args.card, "w") as f:
            json.dump(card, f, indent=2)
            f.write("\n")
        print(f"wrote {args.card}", flush=True)


if __name__ == "__main__":
    main()
