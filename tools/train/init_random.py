"""Write a seeded, randomly initialised pf-scene weights file (for parity tests before training)."""
import argparse, json, os, sys
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import UNet, save_model

ap = argparse.ArgumentParser()
ap.add_argument("--out", default="models/pf-scene-v3.safetensors")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--config", default="{}", help="JSON overrides of the default config")
a = ap.parse_args()
torch.manual_seed(a.seed)
m = UNet(json.loads(a.config))
os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
save_model(m, a.out)
print("wrote", a.out, sum(p.numel() for p in m.parameters()), "params")
