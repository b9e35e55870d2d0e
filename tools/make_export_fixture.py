#!/usr/bin/python3
"""Reference for the encoder export (tests/model/export_test.cpp, examples/vasomim-export).

Restates timm's VisionTransformer as a pre-trained encoder is used downstream (timm is not
installed here):
  VisionTransformer(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio=4,
                    qkv_bias=True, num_classes=0, global_pool='token',
                    norm_layer=partial(nn.LayerNorm, eps=1e-6))
with timm's module names and state_dict order (cls_token, pos_embed, patch_embed.proj, blocks.i
with pre-norm attention and MLP, norm; the head is Identity for num_classes=0) and its
forward_features: patch embedding, cls token prepended, pos_embed added to every token, the blocks,
the final LayerNorm -> [n, 1 + L, embed_dim], cls token first. The blocks (LayerNorm eps 1e-6, qkv
with bias, scale head_dim^-0.5, exact erf GELU) are tools/make_mae_fixtures.py's (imported).

Fixture (default): the configuration of tests/data/vasomim_step (img 64, patch 8, in_chans 3,
embed 64, depth 2, heads 4), the encoder weights of tests/data/vasomim_step/params.safetensors
(MAE names) loaded with load_state_dict(strict=True), run in float64 on
tests/data/vasomim_step/imgs.npy; writes to tests/data/export/:
  features.npy    forward_features, [2, 65, 64] float32
  timm_keys.txt   "name shape" of each state_dict entry of the timm-style model, one a line

Check (opt-in, for users with PyTorch):
  /usr/bin/python3 tools/make_export_fixture.py --check ENCODER.safetensors [--images IMGS.npy]
loads a file written by `vasomim-export --what encoder` into the restatement with
load_state_dict(strict=True), configured from the file's metadata, runs it on the images (default
tests/data/vasomim_step/imgs.npy, which needs img_size 64) and prints the largest difference of
its features from features.npy (or from --features FILE.npy). The safetensors files are read by
hand (8-byte little-endian header length, JSON header, raw data), so no safetensors package is
needed.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_mae_fixtures as mae_ref  # noqa: E402  (Block, PatchEmbed: the timm restatement)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
STEP = os.path.join(ROOT, "tests", "data", "vasomim_step")
OUT = os.path.join(ROOT, "tests", "data", "export")
FIXTURE_CONFIG = dict(img_size=64, patch_size=8, in_chans=3, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4)

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    """{name: np.ndarray} in file order and the metadata dict."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    out = {}
    for name, h in items:
        b, e = h["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=DTYPES[h["dtype"]]).reshape(h["shape"]).copy()
    return out, meta


class VisionTransformer(nn.Module):
    """timm's VisionTransformer as an encoder (num_classes=0, global_pool='token', class token,
    learnable absolute pos_embed over cls + patches). Attribute order follows timm's, so the
    state_dict keys come in timm's order."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio=4):
        super().__init__()
        self.patch_embed = mae_ref.PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.Sequential(*[mae_ref.Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Identity()

    def forward_features(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        x = self.blocks(x)
        return self.norm(x)

    def forward(self, x):
        return self.head(self.forward_features(x)[:, 0])


def load_encoder(config, tensors):
    model = VisionTransformer(**config).double()
    state = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def features(model, imgs):
    with torch.no_grad():
        return model.forward_features(torch.from_numpy(imgs.astype(np.float64))).numpy()


def make_fixture():
    torch.manual_seed(0)
    params, _ = read_safetensors(os.path.join(STEP, "params.safetensors"))
    model = VisionTransformer(**FIXTURE_CONFIG).double()
    keys = list(model.state_dict().keys())
    model = load_encoder(FIXTURE_CONFIG, {k: params[k] for k in keys})
    imgs = np.load(os.path.join(STEP, "imgs.npy"))
    feats = features(model, imgs)
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "features.npy"), feats.astype(np.float32))
    with open(os.path.join(OUT, "timm_keys.txt"), "w") as f:
        for k, v in model.state_dict().items():
            f.write("%s %s\n" % (k, ",".join(str(d) for d in v.shape)))
    print("features %s (|max| %.4f), %d state_dict entries -> %s" % (feats.shape, np.abs(feats).max(), len(keys), OUT))


def check(path, images, reference):
    tensors, meta = read_safetensors(path)
    config = {k: int(meta[k]) for k in ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads")}
    config["mlp_ratio"] = int(meta.get("mlp_ratio", "4"))
    print("%s: %s" % (path, meta.get("timm_constructor", config)))
    model = load_encoder(config, tensors)  # strict=True: every key of timm's model, nothing else
    imgs = np.load(images)
    feats = features(model, imgs)
    ref = np.load(reference).astype(np.float64)
    if ref.shape != feats.shape:
        sys.exit("features %s but the reference %s has %s" % (feats.shape, reference, ref.shape))
    diff = np.abs(feats - ref).max()
    print("load_state_dict(strict=True): ok, %d tensors" % len(tensors))
    print("max |features - reference| = %.3e (reference |max| %.3f, relative %.3e)" %
          (diff, np.abs(ref).max(), diff / np.abs(ref).max()))
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="ENCODER.safetensors", help="check an exported encoder instead")
    ap.add_argument("--images", default=os.path.join(STEP, "imgs.npy"), help="images [n, c, H, W] for --check")
    ap.add_argument("--features", default=os.path.join(OUT, "features.npy"), help="reference features for --check")
    args = ap.parse_args()
    if args.check:
        check(args.check, args.images, args.features)
    else:
        make_fixture()


if __name__ == "__main__":
    main()
