"""The pf-scene conditional diffusion U-Net, cosine schedule and DDIM sampler.

Implements docs/model.md exactly (the C# engine implements the same contract; parity
tests compare the two). Any change here must be mirrored in docs/model.md.
"""
import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

T = 1000
SLOTS = ("background", "object", "colour", "motion")

DEFAULT_CONFIG = {
    "name": "pf-scene",
    "version": 3,
    "image_size": 64,
    "in_channels": 10,
    "out_channels": 3,
    "channels": [48, 96, 96],
    "groups": 8,
    "emb_dim": 128,
    "time_sin_dim": 64,
    "place_sin_dim": 32,
    "gn_eps": 1e-5,
    "T": T,
    "schedule": "cosine",
    "prediction": "v",
    "positional": True,
    "scale_shift": True,
    "place_scale": 10.0,
    "layout": True,
    "vocab_sizes": {"background": 8, "object": 8, "colour": 8, "motion": 8},
}


def position_init(c, h, w):
    """Start of the learned position table: low-frequency sines of x and y, so the network knows where it draws
    from step one (a convolution and an additive bias alone only learn position from the zero padding)."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    planes = []
    for i in range(c):
        axis = xs if i % 2 == 0 else ys
        freq = 1 + (i // 4)
        planes.append(torch.sin(0.5 * math.pi * freq * axis) if (i // 2) % 2 == 0 else torch.cos(0.5 * math.pi * freq * axis))
    return 0.5 * torch.stack(planes)[None]


def sinusoidal(x, d):
    """x: [N] float tensor -> [N, d] = [sin(x*f_0..f_{h-1}), cos(x*f_0..f_{h-1})], f_k = exp(-ln(1e4) k / h)."""
    half = d // 2
    k = torch.arange(half, dtype=torch.float32, device=x.device)
    freq = torch.exp(-math.log(10000.0) * k / half)
    a = x.to(torch.float32)[:, None] * freq[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, ci, co, emb_dim, groups, eps, scale_shift=False):
        super().__init__()
        self.scale_shift = scale_shift
        self.norm1 = nn.GroupNorm(groups, ci, eps=eps)
        self.conv1 = nn.Conv2d(ci, co, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * co if scale_shift else co)
        self.norm2 = nn.GroupNorm(groups, co, eps=eps)
        self.conv2 = nn.Conv2d(co, co, 3, padding=1)
        if ci != co:
            self.skip = nn.Conv2d(ci, co, 1)
        else:
            self.skip = None

    def forward(self, x, semb):
        # semb = SiLU(emb), computed once by the caller
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.emb(semb)[:, :, None, None]
        if self.scale_shift:
            # The conditioning multiplies features (position among them), not only shifts them: where the object goes
            # depends on the motion and the shot position together.
            scale, shift = e.chunk(2, dim=1)
            h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        else:
            h = self.conv2(F.silu(self.norm2(h + e)))
        return h + (x if self.skip is None else self.skip(x))


class Attention(nn.Module):
    def __init__(self, c, groups, eps):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=eps)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)
        self.c = c

    def forward(self, x):
        n, c, h, w = x.shape
        y = self.norm(x)
        qkv = self.qkv(y).reshape(n, 3, c, h * w)
        q = qkv[:, 0].transpose(1, 2)  # [n, hw, c]
        k = qkv[:, 1]  # [n, c, hw]
        v = qkv[:, 2].transpose(1, 2)  # [n, hw, c]
        att = torch.softmax(torch.bmm(q, k) / math.sqrt(c), dim=-1)
        o = torch.bmm(att, v).transpose(1, 2).reshape(n, c, h, w)
        return x + self.proj(o)


class UNet(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        cfg = dict(DEFAULT_CONFIG)
        if config:
            cfg.update(config)
        self.config = cfg
        c0, c1, c2 = cfg["channels"]
        E = cfg["emb_dim"]
        G = cfg["groups"]
        eps = cfg["gn_eps"]
        self.time_mlp = nn.Sequential(nn.Linear(cfg["time_sin_dim"], E), nn.SiLU(), nn.Linear(E, E))
        self.prompt_emb = nn.ModuleDict({s: nn.Embedding(cfg["vocab_sizes"][s] + 1, E) for s in SLOTS})
        self.place_mlp = nn.Sequential(nn.Linear(2 * cfg["place_sin_dim"] + 1, E), nn.SiLU(), nn.Linear(E, E))
        ss = bool(cfg.get("scale_shift"))
        self.patch_in = nn.Conv2d(cfg["in_channels"] * 4, c0, 1)
        half = cfg["image_size"] // 2
        self.pos_emb = nn.Parameter(position_init(c0, half, half)) if cfg.get("positional") else None
        self.down0 = ResBlock(c0, c0, E, G, eps, ss)
        self.down1_conv = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.down1 = ResBlock(c1, c1, E, G, eps, ss)
        self.down2_conv = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.mid1 = ResBlock(c2, c2, E, G, eps, ss)
        self.mid_attn = Attention(c2, G, eps)
        self.mid2 = ResBlock(c2, c2, E, G, eps, ss)
        self.up1 = ResBlock(c2 + c1, c1, E, G, eps, ss)
        self.up0 = ResBlock(c1 + c0, c0, E, G, eps, ss)
        self.out_norm = nn.GroupNorm(G, c0, eps=eps)
        self.out_conv = nn.Conv2d(c0, cfg["out_channels"] * 4, 3, padding=1)

    def embed(self, t, slots, s, alpha, m):
        cfg = self.config
        te = self.time_mlp(sinusoidal(t.to(torch.float32), cfg["time_sin_dim"]))
        pe = 0
        for i, name in enumerate(SLOTS):
            pe = pe + self.prompt_emb[name](slots[:, i].long())
        place = torch.cat(
            [
                sinusoidal(float(cfg["place_scale"]) * s.to(torch.float32), cfg["place_sin_dim"]),
                sinusoidal(float(cfg["place_scale"]) * alpha.to(torch.float32), cfg["place_sin_dim"]),
                m.to(torch.float32)[:, None],
            ],
            dim=1,
        )
        return te + pe + self.place_mlp(place)

    def forward(self, x_t, A, B, t, slots, s, alpha, m, layout=None):
        """x_t, A, B: [N,3,64,64]; t: [N] (int or float); slots: [N,4] int; s, alpha, m: [N] float;
        layout: [N,1,64,64] in [0, 1], the object's planned box (models with "layout"; None = no plan)."""
        emb = self.embed(t, slots, s, alpha, m)
        se = F.silu(emb)
        planes = [x_t, A, B]
        if self.config.get("layout"):
            planes.append(torch.zeros_like(x_t[:, :1]) if layout is None else layout)
        x = torch.cat(planes, dim=1)
        x = self.patch_in(F.pixel_unshuffle(x, 2))
        if self.pos_emb is not None:
            x = x + self.pos_emb
        h0 = self.down0(x, se)
        h1 = self.down1(self.down1_conv(h0), se)
        h = self.down2_conv(h1)
        h = self.mid1(h, se)
        h = self.mid_attn(h)
        h = self.mid2(h, se)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up1(torch.cat([h, h1], dim=1), se)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up0(torch.cat([h, h0], dim=1), se)
        y = self.out_conv(F.silu(self.out_norm(h)))
        return F.pixel_shuffle(y, 2)


# ---------------------------------------------------------------- schedule

def alpha_bar_schedule(T_=T):
    """Cosine schedule, float64 computation, returned as float32 tensor of length T."""
    def f(t):
        return math.cos(((t / T_ + 0.008) / 1.008) * math.pi / 2) ** 2

    f0 = f(0)
    ab = np.array([f(t + 1) / f0 for t in range(T_)], dtype=np.float64)
    ab = np.clip(ab, 1e-5, 0.9999)
    return torch.from_numpy(ab.astype(np.float32))


def ddim_timesteps(steps, T_=T):
    return [int(math.floor((steps - i) * T_ / steps)) - 1 for i in range(steps)]


@torch.no_grad()
def sample(model, noise, slots, s, alpha, m, A=None, B=None, steps=20, guidance=3.0,
           x_init=None, strength=1.0, alpha_bar=None, layout=None):
    """DDIM (eta=0) sampler with classifier-free guidance, exactly per docs/model.md.

    noise: [N,3,64,64]; slots: [N,4]; s, alpha, m: [N]; A, B: [N,3,64,64] or None (zeros);
    layout: [N,1,64,64] or None (zeros), given to the conditional half only, like the prompt.
    Returns the final x0 [N,3,64,64].
    """
    n = noise.shape[0]
    if A is None:
        A = torch.zeros_like(noise)
    if B is None:
        B = torch.zeros_like(noise)
    ab = alpha_bar if alpha_bar is not None else alpha_bar_schedule()
    ts = ddim_timesteps(steps)
    slots = slots.long()
    s = s.float(); alpha = alpha.float(); m = m.float()
    i0 = 0
    x = noise
    if x_init is not None:
        i0 = steps - int(math.ceil(strength * steps))
        a0 = ab[ts[i0]]
        x = torch.sqrt(a0) * x_init + torch.sqrt(1 - a0) * noise
    # conditional first, unconditional second, one batch
    A2 = torch.cat([A, A]); B2 = torch.cat([B, B])
    slots2 = torch.cat([slots, torch.zeros_like(slots)])
    s2 = torch.cat([s, s]); al2 = torch.cat([alpha, alpha]); m2 = torch.cat([m, m])
    if layout is None:
        layout = torch.zeros_like(noise[:, :1])
    layout2 = torch.cat([layout, torch.zeros_like(layout)])
    x0 = x
    for i in range(i0, steps):
        t = ts[i]
        a_t = ab[t]
        a_prev = ab[ts[i + 1]] if i + 1 < steps else torch.tensor(1.0)
        tt = torch.full((2 * n,), t, dtype=torch.long)
        v2 = model(torch.cat([x, x]), A2, B2, tt, slots2, s2, al2, m2, layout2)
        v_c, v_u = v2[:n], v2[n:]
        v = v_u + guidance * (v_c - v_u)
        x0 = (torch.sqrt(a_t) * x - torch.sqrt(1 - a_t) * v).clamp(-1, 1)
        eps = (x - torch.sqrt(a_t) * x0) / torch.sqrt(1 - a_t)
        x = torch.sqrt(a_prev) * x0 + torch.sqrt(1 - a_prev) * eps
    return x0


# ---------------------------------------------------------------- safetensors

_DT = {torch.float32: ("F32", np.float32), torch.int64: ("I64", np.int64), torch.int32: ("I32", np.int32)}
_DT_REV = {"F32": np.float32, "I64": np.int64, "I32": np.int32}


def save_safetensors(path, tensors, metadata=None):
    """tensors: ordered dict name -> torch tensor (float32/int64/int32). Deterministic output."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        code, npdt = _DT[t.dtype]
        b = t.numpy().astype(np.dtype(npdt).newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[base + a:base + b], dtype=np.dtype(_DT_REV[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(_DT_REV[info["dtype"]]).reshape(info["shape"]).copy())
    return out, meta


def save_model(model, path):
    sd = {k: v.float() for k, v in model.state_dict().items()}
    save_safetensors(path, sd, {"config": json.dumps(model.config, sort_keys=True)})


def load_model(path):
    sd, meta = load_safetensors(path)
    cfg = json.loads(meta["config"])
    # Files from before a feature lack its key and were trained without it.
    cfg.setdefault("positional", False)
    cfg.setdefault("scale_shift", False)
    cfg.setdefault("place_scale", 1000.0)
    cfg.setdefault("layout", False)
    model = UNet(cfg)
    model.load_state_dict(sd)
    model.eval()
    return model


def unet_flops(cfg, hw=64):
    """Multiply-adds x2 per forward of one image (convs, linears, attention matmuls)."""
    c0, c1, c2 = cfg["channels"]
    E = cfg["emb_dim"]
    fl = 0

    def conv(ci, co, k, h):
        return 2 * ci * co * k * k * h * h

    def res(ci, co, h):
        f = conv(ci, co, 3, h) + conv(co, co, 3, h) + 2 * E * co * (2 if cfg.get("scale_shift") else 1)
        if ci != co:
            f += conv(ci, co, 1, h)
        return f

    h32, h16, h8 = hw // 2, hw // 4, hw // 8
    fl += 2 * (cfg["time_sin_dim"] * E + E * E) + 2 * ((2 * cfg["place_sin_dim"] + 1) * E + E * E)
    fl += conv(cfg["in_channels"] * 4, c0, 1, h32) + (c0 * h32 * h32 if cfg.get("positional") else 0)
    fl += res(c0, c0, h32)
    fl += conv(c0, c1, 3, h16) + res(c1, c1, h16)
    fl += conv(c1, c2, 3, h8) + res(c2, c2, h8)
    ntok = h8 * h8
    fl += conv(c2, 3 * c2, 1, h8) + 2 * 2 * ntok * ntok * c2 + conv(c2, c2, 1, h8)
    fl += res(c2, c2, h8)
    fl += res(c2 + c1, c1, h16)
    fl += res(c1 + c0, c0, h32)
    fl += conv(c0, cfg["out_channels"] * 4, 3, h32)
    return fl
