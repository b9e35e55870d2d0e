#!/usr/bin/python3
"""PyTorch reference for the MAE parity test (tests/model/mae_parity_test.cpp).

Restates MAE (facebookresearch/mae models_mae.py) and the timm modules it uses (Block, Attention,
Mlp, PatchEmbed; timm is not installed here) with Debian's python3-torch, builds a small MAE with a
fixed seed, runs forward with a given mask, the loss, backward and 3 AdamW steps (betas 0.9/0.95,
weight decay 0.05 in the released groups, warmup + half-cycle cosine learning rate per iteration) and
writes to tests/data/nn/:
  imgs.npy, ids_keep.npy, ids_restore.npy, mask.npy      inputs and the mask they imply
  latent.npy, decoder_input.npy, pred.npy, target.npy    activations of the first forward
  losses.npy, lrs.npy                                     loss and learning rate of each step
  params_init.safetensors, grads_step0.safetensors        parameters and all gradients (step 0)
  params_step3.safetensors                                parameters after the 3 AdamW steps
The safetensors files are written by hand (8-byte little-endian header length, JSON header, raw
little-endian data), so no safetensors package is needed.

  /usr/bin/python3 tools/make_mae_fixtures.py            # writes the fixtures
  /usr/bin/python3 tools/make_mae_fixtures.py --count    # parameter counts of the presets
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "nn")


# ---- timm restatement ------------------------------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.patch_size = (patch_size, patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


# ---- MAE pos_embed.py --------------------------------------------------------------------------------
def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape([2, 1, grid_size, grid_size])
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])
    pos = np.concatenate([emb_h, emb_w], axis=1)
    if cls_token:
        pos = np.concatenate([np.zeros([1, embed_dim]), pos], axis=0)
    return pos


# ---- MAE models_mae.py ---------------------------------------------------------------------------------
class MaskedAutoencoderViT(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=1024, depth=24, num_heads=16,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0,
                 norm_pix_loss=False, init=True):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            [Block(decoder_embed_dim, decoder_num_heads, mlp_ratio) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size ** 2 * in_chans, bias=True)
        self.norm_pix_loss = norm_pix_loss
        if init:
            self.initialize_weights()

    def initialize_weights(self):
        g = int(self.patch_embed.num_patches ** 0.5)
        self.pos_embed.data.copy_(torch.from_numpy(
            get_2d_sincos_pos_embed(self.pos_embed.shape[-1], g, cls_token=True)).float().unsqueeze(0))
        self.decoder_pos_embed.data.copy_(torch.from_numpy(
            get_2d_sincos_pos_embed(self.decoder_pos_embed.shape[-1], g, cls_token=True)).float().unsqueeze(0))
        w = self.patch_embed.proj.weight.data
        torch.nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        torch.nn.init.normal_(self.cls_token, std=.02)
        torch.nn.init.normal_(self.mask_token, std=.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def patchify(self, imgs):
        p = self.patch_embed.patch_size[0]
        h = w = imgs.shape[2] // p
        x = imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(shape=(imgs.shape[0], h * w, p ** 2 * 3))

    def forward_encoder(self, x, ids_keep):
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]
        N, L, D = x.shape
        x = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)
        x = x + self.decoder_pos_embed
        self.decoder_input = x
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        x = self.decoder_pred(x)
        return x[:, 1:, :]

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6) ** .5
        self.target = target
        loss = (pred - target) ** 2
        loss = loss.mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def forward(self, imgs, ids_shuffle, len_keep):
        """MAE's forward with the random shuffle given (instead of drawn from noise)."""
        N, L = ids_shuffle.shape
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        mask = torch.ones([N, L])
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)
        latent = self.forward_encoder(imgs, ids_keep)
        self.latent = latent
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask, ids_keep, ids_restore


# ---- MAE util/lr_sched.py (per iteration, fractional epoch) -------------------------------------------
def adjust_lr(epoch, lr, min_lr, warmup_epochs, epochs):
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / (epochs - warmup_epochs)))


def decays(name, p):
    """The released add_weight_decay (XA-SSL main_pretrain.py, DESIGN 4.5): no decay for 1-D
    parameters and names ending in ".bias"; cls_token and mask_token (3-D) are decayed."""
    return not (p.ndim == 1 or name.endswith(".bias"))


def write_safetensors(path, tensors, source="tools/make_mae_fixtures.py"):
    """F32 safetensors of torch tensors (any dtype, rounded to float32), in the given order."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    header["__metadata__"] = {"format": "pt", "source": source}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def presets():
    return {
        "base": dict(embed_dim=768, depth=12, num_heads=12),
        "large": dict(embed_dim=1024, depth=24, num_heads=16),
        "huge": dict(embed_dim=1280, depth=32, num_heads=16, patch_size=14),
    }


def main():
    if "--count" in sys.argv:
        for name, kw in presets().items():
            m = MaskedAutoencoderViT(norm_pix_loss=True, init=False, **kw)
            print(name, sum(p.numel() for p in m.state_dict().values()))
        return

    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = dict(img_size=32, patch_size=8, in_chans=3, embed_dim=64, depth=2, num_heads=4, decoder_embed_dim=32,
               decoder_depth=2, decoder_num_heads=4, mlp_ratio=4.0, norm_pix_loss=True)
    model = MaskedAutoencoderViT(**cfg)
    N, L, len_keep = 2, 16, 4  # mask ratio 0.75
    imgs = torch.randn(N, 3, 32, 32)
    ids_shuffle = torch.argsort(torch.rand(N, L), dim=1)

    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "params_init.safetensors"), model.state_dict())

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if decays(name, p) else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.05}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    blr, batch = 1e-3 * 256 / N, N  # lr = blr * batch / 256 = 1e-3
    base_lr, min_lr, warmup_epochs, epochs, iters_per_epoch = blr * batch / 256, 1e-5, 1, 3, 2

    losses, lrs = [], []
    for step in range(3):
        opt.zero_grad()
        loss, pred, mask, ids_keep, ids_restore = model(imgs, ids_shuffle, len_keep)
        loss.backward()
        if step == 0:
            np.save(os.path.join(OUT, "imgs.npy"), imgs.numpy())
            np.save(os.path.join(OUT, "ids_keep.npy"), ids_keep.numpy().astype(np.int64))
            np.save(os.path.join(OUT, "ids_restore.npy"), ids_restore.numpy().astype(np.int64))
            np.save(os.path.join(OUT, "mask.npy"), mask.numpy())
            np.save(os.path.join(OUT, "latent.npy"), model.latent.detach().numpy())
            np.save(os.path.join(OUT, "decoder_input.npy"), model.decoder_input.detach().numpy())
            np.save(os.path.join(OUT, "pred.npy"), pred.detach().numpy())
            np.save(os.path.join(OUT, "target.npy"), model.target.detach().numpy())
            write_safetensors(os.path.join(OUT, "grads_step0.safetensors"),
                              {n: p.grad for n, p in model.named_parameters() if p.requires_grad})
        it = step + 1  # iterations 1, 2, 3: epochs 0.5 (warmup), 1.0 (peak), 1.5 (cosine)
        lr = adjust_lr(it / iters_per_epoch, base_lr, min_lr, warmup_epochs, epochs)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(loss.item())
        lrs.append(lr)
    np.save(os.path.join(OUT, "losses.npy"), np.array(losses, dtype=np.float64))
    np.save(os.path.join(OUT, "lrs.npy"), np.array(lrs, dtype=np.float64))
    write_safetensors(os.path.join(OUT, "params_step3.safetensors"), model.state_dict())
    print("losses", losses, "lrs", lrs)


if __name__ == "__main__":
    main()
