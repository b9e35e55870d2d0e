#!/usr/bin/python3
"""PyTorch reference for the segmentation model test (tests/model/segmentation_model_test.cpp).

Restates, in float64 with Debian's python3-torch (timm is not installed here), the fine-tuning model
of include/vasomim/model/segmentation_model.hpp with the linear decoder:
  timm VisionTransformer.forward_features on every patch (patch embedding, cls token, learnable
  pos_embed, pre-norm blocks, LayerNorm eps 1e-6), then a per-patch nn.Linear(E, p*p*k) on the
  patch tokens, unpatchified (MAE's pixel order) to logits [n, k, H, W];
  loss = 0.5 * BCEWithLogits (mean) + 0.5 * (1 - mean per-image soft Dice, smooth 1e-5);
and timm's resample_abs_pos_embed (F.interpolate(mode='bicubic', align_corners=False), cls row kept,
as MAE's interpolate_pos_embed). Writes to tests/data/segmentation/:
  params.safetensors        every parameter (MAE init plus noise, rounded to float32)
  imgs.npy, masks.npy       [2, 3, 32, 32] inputs, [2, 1, 32, 32] binary masks
  logits.npy, loss.npy      forward logits [2, 1, 32, 32] and the loss
  grads.safetensors         the gradient of every parameter
  pos_grid6.npy, pos_grid3.npy   pos_embed resampled to 6 x 6 and 3 x 3 grids
  imgs48.npy, logits48.npy  a 48 px model initialised from params (pos_embed resampled) on [1, 3, 48, 48]
  params_lrd_step1.safetensors   the parameters after one AdamW step (lr 1e-3, betas 0.9/0.95,
                            weight decay 0.05 in the released groups) with MAE's layer-wise lr decay
                            (param_groups_lrd, layer_decay 0.75)
  logits_dp.npy, loss_dp.npy, grads_dp.safetensors   the same model in training with drop path
                            0.5 (timm: block rates linspace(0, 0.5, depth) = 0, 0.5) and the
                            DropPath draws DP_FACTORS (block 1: sample 0 drops attention and keeps
                            the MLP x 2, sample 1 the opposite)

  /usr/bin/python3 tools/make_segmentation_fixtures.py
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_mae_fixtures import Block, PatchEmbed, get_2d_sincos_pos_embed  # noqa: E402  (timm / MAE restatement)
from make_mae_fixtures import write_safetensors as mae_ref_write  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "segmentation")
# DropPath draws of the drop-path fixture: block 0 has rate 0, block 1 rate 0.5 (kept: x 1 / 0.5).
DP_FACTORS = [([1.0, 1.0], [1.0, 1.0]), ([0.0, 2.0], [2.0, 0.0])]
CFG = dict(img_size=32, patch_size=8, in_chans=3, embed_dim=32, depth=2, num_heads=2)


class SegmentationViT(nn.Module):
    """ViT encoder (timm names at the top level) + decoder.head (the linear decoder)."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, depth, num_heads, num_classes=1):
        super().__init__()
        self.p, self.k = patch_size, num_classes
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        L = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + L, embed_dim))
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, 4.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.decoder = nn.Module()
        self.decoder.head = nn.Linear(embed_dim, patch_size * patch_size * num_classes)

    def forward(self, x, drop=None):
        """drop: per block, (attention factors [n], MLP factors [n]) of timm's DropPath, or None."""
        n = x.shape[0]
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(n, -1, -1), x], dim=1) + self.pos_embed
        for i, blk in enumerate(self.blocks):
            if drop is None:
                x = blk(x)
            else:
                fa, fm = (torch.tensor(f, dtype=x.dtype).view(n, 1, 1) for f in drop[i])
                x = x + fa * blk.attn(blk.norm1(x))
                x = x + fm * blk.mlp(blk.norm2(x))
        x = self.norm(x)
        y = self.decoder.head(x[:, 1:])
        g, p, k = int(math.isqrt(y.shape[1])), self.p, self.k
        y = y.reshape(n, g, g, p, p, k)
        y = torch.einsum("nhwpqc->nchpwq", y)
        return y.reshape(n, k, g * p, g * p)


def mae_init(m):
    for name, t in m.named_parameters():
        if name == "pos_embed":
            g = int(math.isqrt(t.shape[1] - 1))
            t.data.copy_(torch.from_numpy(get_2d_sincos_pos_embed(t.shape[-1], g, cls_token=True)).unsqueeze(0))
        elif name == "cls_token":
            nn.init.normal_(t, std=0.02)
        elif name.endswith(".bias"):
            nn.init.zeros_(t)
        elif t.ndim == 1:
            nn.init.ones_(t)
        else:
            nn.init.xavier_uniform_(t.view(t.shape[0], -1))


def bce_dice(z, t):
    bce = F.binary_cross_entropy_with_logits(z, t)
    p = torch.sigmoid(z).reshape(z.shape[0], -1)
    tt = t.reshape(t.shape[0], -1)
    dice = (2 * (p * tt).sum(1) + 1e-5) / (p.sum(1) + tt.sum(1) + 1e-5)
    return 0.5 * bce + 0.5 * (1 - dice.mean())


def resample_abs_pos_embed(pos, new_grid, prefix=1):
    """timm's resample_abs_pos_embed with antialias=False (MAE's interpolate_pos_embed)."""
    E = pos.shape[-1]
    old = int(math.isqrt(pos.shape[1] - prefix))
    grid = pos[:, prefix:].reshape(1, old, old, E).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new_grid, new_grid), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid * new_grid, E)
    return torch.cat([pos[:, :prefix], grid], dim=1)


def get_layer_id_for_vit(name, num_layers):
    """MAE util/lr_decay.py."""
    if name in ["cls_token", "pos_embed"]:
        return 0
    if name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks"):
        return int(name.split(".")[1]) + 1
    return num_layers


def param_groups_lrd(model, weight_decay=0.05, layer_decay=0.75):
    """MAE's param_groups_lrd with the weight-decay rule of DESIGN 4.5 (the released add_weight_decay:
    no decay for 1-D tensors and biases; cls_token and pos_embed, 3-D, are decayed)."""
    num_layers = len(model.blocks) + 1
    scales = [layer_decay ** (num_layers - i) for i in range(num_layers + 1)]
    groups = {}
    for n, p in model.named_parameters():
        decay = not (p.ndim == 1 or n.endswith(".bias"))
        layer = get_layer_id_for_vit(n, num_layers)
        key = "layer_%d_%s" % (layer, "decay" if decay else "no_decay")
        g = groups.setdefault(key, {"lr_scale": scales[layer], "weight_decay": weight_decay if decay else 0.0,
                                    "params": []})
        g["params"].append(p)
    return list(groups.values())


def f32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def write_safetensors(path, tensors):
    mae_ref_write(path, tensors, source="tools/make_segmentation_fixtures.py")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = SegmentationViT(**CFG).double()
    mae_init(model)
    with torch.no_grad():
        for t in model.parameters():  # away from the symmetric init, then exactly float32 values
            t.add_(0.05 * torch.randn_like(t))
            t.copy_(t.float().double())
    imgs = torch.randn(2, 3, 32, 32, dtype=torch.float64).float().double()
    masks = (torch.rand(2, 1, 32, 32, dtype=torch.float64) < 0.3).double()

    logits = model(imgs)
    loss = bce_dice(logits, masks)
    loss.backward()

    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "params.safetensors"), {n: p for n, p in model.named_parameters()})
    write_safetensors(os.path.join(OUT, "grads.safetensors"), {n: p.grad for n, p in model.named_parameters()})
    grads0 = {n: p.grad.clone() for n, p in model.named_parameters()}
    np.save(os.path.join(OUT, "imgs.npy"), f32(imgs))
    np.save(os.path.join(OUT, "masks.npy"), f32(masks))
    np.save(os.path.join(OUT, "logits.npy"), f32(logits))
    np.save(os.path.join(OUT, "loss.npy"), np.array([loss.item()], dtype=np.float64))

    with torch.no_grad():
        pos = model.pos_embed.detach()
        np.save(os.path.join(OUT, "pos_grid6.npy"), resample_abs_pos_embed(pos, 6).numpy())
        np.save(os.path.join(OUT, "pos_grid3.npy"), resample_abs_pos_embed(pos, 3).numpy())
        big = SegmentationViT(**dict(CFG, img_size=48)).double()
        state = {n: p.detach().clone() for n, p in model.named_parameters()}
        state["pos_embed"] = resample_abs_pos_embed(state["pos_embed"], 6)
        big.load_state_dict(state, strict=True)
        imgs48 = torch.randn(1, 3, 48, 48, dtype=torch.float64).float().double()
        np.save(os.path.join(OUT, "imgs48.npy"), f32(imgs48))
        np.save(os.path.join(OUT, "logits48.npy"), f32(big(imgs48)))
    model.zero_grad()
    logits_dp = model(imgs, DP_FACTORS)
    loss_dp = bce_dice(logits_dp, masks)
    loss_dp.backward()
    np.save(os.path.join(OUT, "logits_dp.npy"), f32(logits_dp))
    np.save(os.path.join(OUT, "loss_dp.npy"), np.array([loss_dp.item()], dtype=np.float64))
    write_safetensors(os.path.join(OUT, "grads_dp.safetensors"), {n: p.grad for n, p in model.named_parameters()})
    for n, p in model.named_parameters():  # the optimiser step below uses the first backward's gradients
        p.grad = grads0[n]

    opt = torch.optim.AdamW(param_groups_lrd(model), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    for g in opt.param_groups:  # MAE's lr_sched.adjust_learning_rate
        g["lr"] = 1e-3 * g["lr_scale"]
    opt.step()
    write_safetensors(os.path.join(OUT, "params_lrd_step1.safetensors"), {n: p for n, p in model.named_parameters()})
    print("loss", loss.item(), "params", sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
