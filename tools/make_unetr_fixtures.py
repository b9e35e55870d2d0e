#!/usr/bin/python3
"""PyTorch reference for the UNETR decoder (tests/model/unetr_decoder_test.cpp, tests/nn/unetr_layers_test.cpp).

A float64 restatement, written for this project with Debian's python3-torch (MONAI is not installed
here), of MONAI's UNETR(spatial_dims=2, norm_name="instance", conv_block=True, res_block=True)
decoder on top of the fine-tuning ViT of tools/make_segmentation_fixtures.py (timm names, cls token):
  - the outputs of blocks k * depth // 4 (k = 1, 2, 3; MONAI's hidden_states_out[3], [6], [9] for
    depth 12) and the final LayerNorm'd tokens, cls row dropped, reshaped to [n, E, g, g];
  - encoder1 = UnetrBasicBlock (UnetResBlock on the image), encoder2/3/4 = UnetrPrUpBlock with 2/1/0
    (transposed conv, UnetResBlock) layers, decoder5..2 = UnetrUpBlock (transposed conv, cat with
    the skip, UnetResBlock), out = UnetOutBlock (1x1 conv with bias);
  - UnetResBlock: conv3x3 (no bias) - InstanceNorm2d - LeakyReLU(0.01) - conv3x3 - InstanceNorm2d,
    + (conv1x1 - InstanceNorm2d of) the input, LeakyReLU(0.01); transposed convs k2 s2 without bias;
  - module names as MONAI's (each conv inside a `.conv` wrapper as MONAI's Convolution), under `decoder.`.
Configuration: img 32, patch 16, 3 channels, width 16, depth 4, 2 heads, feature_size 3, 1 class,
batch 2; loss 0.5 BCE + 0.5 (1 - Dice) as the project's bce_dice. Writes tests/data/unetr/:
  params.safetensors, grads.safetensors   every parameter (float32 values) and its gradient
  imgs.npy, masks.npy                      inputs [2, 3, 32, 32], binary masks [2, 1, 32, 32]
  logits.npy, loss.npy                     float64 logits [2, 1, 32, 32] and loss
  p8_*                                     the same for patch 8 (this project's generalisation to
                                           log2(patch) = 3 stages: encoder2/3, decoder4/3/2): img 32,
                                           1 channel, width 16, depth 3, feature_size 2
and the layer fixtures (float64 npy): conv_transpose2d (kernel 3, stride 2, padding 1, output
padding 1, bias) and InstanceNorm2d(affine) forward outputs and gradients of sum(out * r):
  ct_x, ct_w, ct_b, ct_r, ct_out, ct_gx, ct_gw, ct_gb; in_x, in_w, in_b, in_r, in_out, in_gx, in_gw, in_gb

  /usr/bin/python3 tools/make_unetr_fixtures.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_mae_fixtures import Block, PatchEmbed  # noqa: E402  (timm / MAE restatement)
from make_mae_fixtures import write_safetensors as mae_ref_write  # noqa: E402
from make_segmentation_fixtures import bce_dice, mae_init  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "unetr")
CFG = dict(img_size=32, patch_size=16, in_chans=3, embed_dim=16, depth=4, num_heads=2, feature_size=3)
# patch 8 (the generalisation to m = 3 stages): 1 channel, depth 3 (hidden blocks 1, 2)
CFG_P8 = dict(img_size=32, patch_size=8, in_chans=1, embed_dim=16, depth=3, num_heads=2, feature_size=2)


class Wrap(nn.Module):
    """MONAI's Convolution as far as names go: the layer sits at `.conv`."""

    def __init__(self, layer):
        super().__init__()
        self.conv = layer

    def forward(self, x):
        return self.conv(x)


def conv(ci, co, k, bias=False):
    return Wrap(nn.Conv2d(ci, co, k, stride=1, padding=(k - 1) // 2, bias=bias))


def tconv(ci, co):
    return Wrap(nn.ConvTranspose2d(ci, co, 2, stride=2, bias=False))


class ResBlock(nn.Module):
    """UnetResBlock (module order conv1, conv2, lrelu, norm1, norm2, conv3, norm3 as MONAI's)."""

    def __init__(self, ci, co, affine=False):
        super().__init__()
        self.conv1 = conv(ci, co, 3)
        self.conv2 = conv(co, co, 3)
        self.lrelu = nn.LeakyReLU(0.01)
        self.norm1 = nn.InstanceNorm2d(co, affine=affine)
        self.norm2 = nn.InstanceNorm2d(co, affine=affine)
        self.downsample = ci != co
        if self.downsample:
            self.conv3 = conv(ci, co, 1)
            self.norm3 = nn.InstanceNorm2d(co, affine=affine)

    def forward(self, x):
        y = self.lrelu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        r = self.norm3(self.conv3(x)) if self.downsample else x
        return self.lrelu(y + r)


class BasicBlock(nn.Module):  # UnetrBasicBlock with res_block=True
    def __init__(self, ci, co):
        super().__init__()
        self.layer = ResBlock(ci, co)

    def forward(self, x):
        return self.layer(x)


class PrUpBlock(nn.Module):  # UnetrPrUpBlock with conv_block=True, res_block=True
    def __init__(self, ci, co, num_layer):
        super().__init__()
        self.transp_conv_init = tconv(ci, co)
        self.blocks = nn.ModuleList([nn.Sequential(tconv(co, co), ResBlock(co, co)) for _ in range(num_layer)])

    def forward(self, x):
        x = self.transp_conv_init(x)
        for b in self.blocks:
            x = b(x)
        return x


class UpBlock(nn.Module):  # UnetrUpBlock with res_block=True
    def __init__(self, ci, co):
        super().__init__()
        self.transp_conv = tconv(ci, co)
        self.conv_block = ResBlock(2 * co, co)

    def forward(self, x, skip):
        return self.conv_block(torch.cat((self.transp_conv(x), skip), dim=1))


class OutBlock(nn.Module):  # UnetOutBlock
    def __init__(self, ci, co):
        super().__init__()
        self.conv = conv(ci, co, 1, bias=True)

    def forward(self, x):
        return self.conv(x)


class UnetrDecoder(nn.Module):
    """m = log2(patch) x2 stages; m = 4 (patch 16) is MONAI's UNETR: encoder2/3/4 with 2/1/0 layers,
    decoder5..decoder2. Other m: encoder{k+1} (k = 1..m-1) with m-1-k layers, decoder{m+1}..decoder2,
    hidden states k * depth // m."""

    def __init__(self, in_chans, embed_dim, depth, f, num_classes, m=4):
        super().__init__()
        self.m = m
        self.hidden = [k * depth // m for k in range(1, m)]
        self.encoder1 = BasicBlock(in_chans, f)
        for k in range(1, m):
            setattr(self, "encoder%d" % (k + 1), PrUpBlock(embed_dim, f << k, m - 1 - k))
        for k in range(m - 1, 0, -1):
            setattr(self, "decoder%d" % (k + 2), UpBlock(embed_dim if k == m - 1 else f << (k + 1), f << k))
        self.decoder2 = UpBlock(2 * f, f)
        self.out = OutBlock(f, num_classes)

    @staticmethod
    def proj_feat(x):  # [n, 1 + L, E] -> [n, E, g, g], the cls row dropped
        n, t, e = x.shape
        g = int(round((t - 1) ** 0.5))
        return x[:, 1:].reshape(n, g, g, e).permute(0, 3, 1, 2).contiguous()

    def forward(self, img, hidden, x):
        enc1 = self.encoder1(img)
        # MONAI (m = 4): enc2..enc4 from hidden_states_out[3, 6, 9]; dec3 = decoder5(proj_feat(x), enc4), ...
        skips = [getattr(self, "encoder%d" % (k + 1))(self.proj_feat(hidden[self.hidden[k - 1]])) for k in range(1, self.m)]
        y = self.proj_feat(x)
        for k in range(self.m - 1, 0, -1):
            y = getattr(self, "decoder%d" % (k + 2))(y, skips[k - 1])
        return self.out(self.decoder2(y, enc1))


class SegmentationUNETR(nn.Module):
    """ViT encoder (timm names at the top level) + decoder.* (the UNETR decoder)."""

    def __init__(self, img_size, patch_size, in_chans, embed_dim, depth, num_heads, feature_size, num_classes=1):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        L = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + L, embed_dim))
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, 4.0) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.decoder = UnetrDecoder(in_chans, embed_dim, depth, feature_size, num_classes,
                                    m=patch_size.bit_length() - 1)

    def forward(self, img):
        n = img.shape[0]
        x = self.patch_embed(img)
        x = torch.cat([self.cls_token.expand(n, -1, -1), x], dim=1) + self.pos_embed
        hidden = []
        for blk in self.blocks:
            x = blk(x)
            hidden.append(x)
        return self.decoder(img, hidden, self.norm(x))


def write_safetensors(path, tensors):
    mae_ref_write(path, tensors, source="tools/make_unetr_fixtures.py")


def save(name, t):
    np.save(os.path.join(OUT, name + ".npy"), t.detach().numpy().astype(np.float64))


def f32(t):
    return torch.randn(*t, dtype=torch.float64).float().double() if isinstance(t, tuple) else t.float().double()


def layer_fixtures():
    # ConvTranspose2d(3 -> 4, kernel 3, stride 2, padding 1, output_padding 1) with bias on [2, 3, 5, 4]
    x, w, b = f32((2, 3, 5, 4)), f32((3, 4, 3, 3)), f32((4,))
    for t in (x, w, b):
        t.requires_grad_(True)
    out = F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    r = f32(tuple(out.shape))
    (out * r).sum().backward()
    for k, v in dict(x=x, w=w, b=b, r=r, out=out, gx=x.grad, gw=w.grad, gb=b.grad).items():
        save("ct_" + k, v)
    # InstanceNorm2d(3, affine=True) on [2, 3, 4, 5]
    x, w, b = f32((2, 3, 4, 5)), f32((3,)), f32((3,))
    for t in (x, w, b):
        t.requires_grad_(True)
    out = F.instance_norm(x, weight=w, bias=b, eps=1e-5)
    r = f32(tuple(out.shape))
    (out * r).sum().backward()
    for k, v in dict(x=x, w=w, b=b, r=r, out=out, gx=x.grad, gw=w.grad, gb=b.grad).items():
        save("in_" + k, v)


def model_fixture(cfg, prefix):
    model = SegmentationUNETR(**cfg).double()
    mae_init(model)
    with torch.no_grad():
        for t in model.parameters():  # away from the symmetric init, then exactly float32 values
            t.add_(0.05 * torch.randn_like(t))
            t.copy_(t.float().double())
    S, c = cfg["img_size"], cfg["in_chans"]
    imgs = torch.randn(2, c, S, S, dtype=torch.float64).float().double()
    masks = (torch.rand(2, 1, S, S, dtype=torch.float64) < 0.3).double()
    logits = model(imgs)
    loss = bce_dice(logits, masks)
    loss.backward()
    write_safetensors(os.path.join(OUT, prefix + "params.safetensors"), {n: p for n, p in model.named_parameters()})
    write_safetensors(os.path.join(OUT, prefix + "grads.safetensors"), {n: p.grad for n, p in model.named_parameters()})
    np.save(os.path.join(OUT, prefix + "imgs.npy"), imgs.numpy().astype(np.float32))
    np.save(os.path.join(OUT, prefix + "masks.npy"), masks.numpy().astype(np.float32))
    save(prefix + "logits", logits)
    np.save(os.path.join(OUT, prefix + "loss.npy"), np.array([loss.item()], dtype=np.float64))
    dec = [n for n, _ in model.named_parameters() if n.startswith("decoder.")]
    print(prefix or "patch 16:", "loss", loss.item(), "params", sum(p.numel() for p in model.parameters()),
          "decoder tensors", len(dec))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    layer_fixtures()
    model_fixture(CFG, "")
    model_fixture(CFG_P8, "p8_")


if __name__ == "__main__":
    main()
