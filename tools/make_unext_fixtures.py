#!/usr/bin/python3
"""PyTorch reference values for the UNeXt-S segmentor and the anatomical consistency loss.

UNeXt-S is restated here from the released archs.py (class UNext_S: conv stages in->8->16->32,
tokenised shifted-MLP stages 64 and 128, decoder 128->64->32->16->8->8, 1x1 head). The layer
fixtures use in_channels = 1 (the gray configuration); the consistency fixture uses the released
in_channels = 3 (S sees the 3-channel image and reconstruction). Parameters are set by a closed formula
(see `formula`) that the C++ test repeats, so no weights are stored. Outputs (float32 .npy) go to
tests/data/segmentor/:
  names.txt               state_dict keys in order (num_batches_tracked omitted)
  x, r                    input [2,1,64,64] and the upstream gradient of the logits
  logits_{train,eval}     forward in each mode
  dx_{train,eval}         gradient of sum(logits * r) w.r.t. x
  gstats_{train,eval}     per trainable tensor: [sum, sum |g|, sqrt(sum g^2)]
  gsmall_{train,eval}     full gradients of the trainable tensors with <= 2048 elements, concatenated
  running_train           running_mean/running_var of every BN after one training forward
  cons_image, cons_pred   target image I [1,3,64,64] and predicted patches P [1,16,768] (p = 16)
  cons_loss, cons_dpred   L_cons and dL_cons/dP with a 3-channel UNeXt-S
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "segmentor")


class DWConv(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 3, 1, 1, bias=True, groups=c)


def shift(x, pad, axis, n_chunks=5):
    # x: [B, C, H, W]; zero-pad, chunk channels, roll chunk j by j - pad along axis, crop back.
    B, C, H, W = x.shape
    xn = F.pad(x, (pad, pad, pad, pad), "constant", 0)
    xs = torch.chunk(xn, n_chunks, 1)
    xs = [torch.roll(c, s, axis) for c, s in zip(xs, range(-pad, pad + 1))]
    xc = torch.cat(xs, 1)
    return torch.narrow(torch.narrow(xc, 2, pad, H), 3, pad, W)


class ShiftMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c, c)
        self.dwconv = DWConv(c)
        self.fc2 = nn.Linear(c, c)

    def forward(self, x, H, W):
        B, N, C = x.shape
        img = x.transpose(1, 2).reshape(B, C, H, W)
        t = shift(img, 2, 2).reshape(B, C, H * W).transpose(1, 2)
        t = self.fc1(t)
        t = self.dwconv.dwconv(t.transpose(1, 2).reshape(B, C, H, W)).flatten(2).transpose(1, 2)
        t = F.gelu(t)
        img = t.transpose(1, 2).reshape(B, C, H, W)
        t = shift(img, 2, 3).reshape(B, C, H * W).transpose(1, 2)
        return self.fc2(t)


class ShiftedBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm2 = nn.LayerNorm(c)
        self.mlp = ShiftMLP(c)

    def forward(self, x, H, W):
        return x + self.mlp(self.norm2(x), H, W)


class OverlapPatchEmbed(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.proj = nn.Conv2d(cin, c, 3, 2, 1)
        self.norm = nn.LayerNorm(c)

    def forward(self, x):
        x = self.proj(x)
        _, _, H, W = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)), H, W


class UNextS(nn.Module):
    def __init__(self, in_channels=1, num_classes=1):
        super().__init__()
        self.encoder1 = nn.Conv2d(in_channels, 8, 3, 1, 1)
        self.encoder2 = nn.Conv2d(8, 16, 3, 1, 1)
        self.encoder3 = nn.Conv2d(16, 32, 3, 1, 1)
        self.ebn1, self.ebn2, self.ebn3 = nn.BatchNorm2d(8), nn.BatchNorm2d(16), nn.BatchNorm2d(32)
        self.norm3, self.norm4 = nn.LayerNorm(64), nn.LayerNorm(128)
        self.dnorm3, self.dnorm4 = nn.LayerNorm(64), nn.LayerNorm(32)
        self.block1 = nn.ModuleList([ShiftedBlock(64)])
        self.block2 = nn.ModuleList([ShiftedBlock(128)])
        self.dblock1 = nn.ModuleList([ShiftedBlock(64)])
        self.dblock2 = nn.ModuleList([ShiftedBlock(32)])
        self.patch_embed3 = OverlapPatchEmbed(32, 64)
        self.patch_embed4 = OverlapPatchEmbed(64, 128)
        self.decoder1 = nn.Conv2d(128, 64, 3, 1, 1)
        self.decoder2 = nn.Conv2d(64, 32, 3, 1, 1)
        self.decoder3 = nn.Conv2d(32, 16, 3, 1, 1)
        self.decoder4 = nn.Conv2d(16, 8, 3, 1, 1)
        self.decoder5 = nn.Conv2d(8, 8, 3, 1, 1)
        self.dbn1, self.dbn2, self.dbn3, self.dbn4 = (nn.BatchNorm2d(64), nn.BatchNorm2d(32), nn.BatchNorm2d(16),
                                                      nn.BatchNorm2d(8))
        self.final = nn.Conv2d(8, num_classes, 1)

    def forward(self, x):
        B = x.shape[0]
        up = lambda t: F.interpolate(t, scale_factor=(2, 2), mode="bilinear", align_corners=False)
        t1 = F.relu(F.max_pool2d(self.ebn1(self.encoder1(x)), 2, 2))
        t2 = F.relu(F.max_pool2d(self.ebn2(self.encoder2(t1)), 2, 2))
        t3 = F.relu(F.max_pool2d(self.ebn3(self.encoder3(t2)), 2, 2))
        out, H, W = self.patch_embed3(t3)
        out = self.norm3(self.block1[0](out, H, W))
        t4 = out.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        out, H, W = self.patch_embed4(t4)
        out = self.norm4(self.block2[0](out, H, W))
        out = out.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        out = torch.add(F.relu(up(self.dbn1(self.decoder1(out)))), t4)
        _, _, H, W = out.shape
        out = self.dnorm3(self.dblock1[0](out.flatten(2).transpose(1, 2), H, W))
        out = out.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        out = torch.add(F.relu(up(self.dbn2(self.decoder2(out)))), t3)
        _, _, H, W = out.shape
        out = self.dnorm4(self.dblock2[0](out.flatten(2).transpose(1, 2), H, W))
        out = out.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
        out = torch.add(F.relu(up(self.dbn3(self.decoder3(out)))), t2)
        out = torch.add(F.relu(up(self.dbn4(self.decoder4(out)))), t1)
        out = F.relu(up(self.decoder5(out)))
        return self.final(out)


def hash_uniform(t, n):
    """Uniform values in [-1, 1) from a splitmix64 hash of (t << 32 | j), j < n (exact in float64)."""
    with np.errstate(over="ignore"):
        z = (np.arange(n, dtype=np.uint64) + (np.uint64(t) << np.uint64(32))) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x632BE59BD9B4E019)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -52 - 1.0


def formula(name, shape, t):
    """Deterministic parameter values (the C++ parity test applies the same rule)."""
    n = int(np.prod(shape))
    v = hash_uniform(t, n)
    if name.endswith("running_var"):
        v = 1.0 + 0.5 * v * v
    elif name.endswith("running_mean"):
        v = 0.1 * v
    elif len(shape) == 1:
        v = 1.0 + 0.1 * v if name.endswith("weight") else 0.1 * v
    else:
        v = v * math.sqrt(3.0 * shape[0] / n)
    return v.astype(np.float32).reshape(shape)


def set_params(model):
    names = []
    with torch.no_grad():
        for t, (k, p) in enumerate((k, p) for k, p in model.state_dict().items() if "num_batches" not in k):
            p.copy_(torch.from_numpy(formula(k, tuple(p.shape), t)))
            names.append(k)
    return names


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(a, dtype=np.float32)))


def grad_outputs(model, x, r, training, tag):
    model.zero_grad()
    model.train(training)
    xx = x.clone().requires_grad_(True)
    y = model(xx)
    (y * r).sum().backward()
    save("logits_" + tag, y.detach().numpy())
    save("dx_" + tag, xx.grad.numpy())
    stats, small = [], []
    for _, p in model.named_parameters():
        g = p.grad.detach().double().numpy().ravel()
        stats.append([g.sum(), np.abs(g).sum(), math.sqrt((g * g).sum())])
        if g.size <= 2048:
            small.append(g)
    save("gstats_" + tag, np.array(stats))
    save("gsmall_" + tag, np.concatenate(small))


def unpatchify(p, patch, c):
    n, L, _ = p.shape
    h = w = int(round(L ** 0.5))
    x = p.reshape(n, h, w, patch, patch, c)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(n, c, h * patch, w * patch)


def patchify(img, patch):
    n, c, H, W = img.shape
    h, w = H // patch, W // patch
    x = img.reshape(n, c, h, patch, w, patch)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(n, h * w, patch * patch * c)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    # The reference runs in float64 on float32-representable inputs and parameters: Debian's torch
    # 1.13 float32 CPU backward of this graph returned gradients of ~1e33 on the development machine
    # (forward fine), so float32 torch is no oracle here. Stored values are rounded to float32.
    model = UNextS().double()
    names = set_params(model)
    with open(os.path.join(OUT, "names.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    x = torch.randn(2, 1, 64, 64).double()
    r = torch.randn(2, 1, 64, 64).double()
    save("x", x.numpy())
    save("r", r.numpy())
    grad_outputs(model, x, r, True, "train")
    running = [b.detach().numpy().ravel() for k, b in model.state_dict().items() if "running" in k]
    save("running_train", np.concatenate(running))
    set_params(model)  # restore the running statistics
    grad_outputs(model, x, r, False, "eval")

    # anatomical consistency as released: a 3-channel S frozen in eval mode applied to I and I_hat,
    # target detached, gradient into the patches
    model = UNextS(in_channels=3).double()
    set_params(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    patch = 16
    img = torch.randn(1, 3, 64, 64).double()
    pred = (0.8 * torch.randn(1, 16, patch * patch * 3)).float().double().requires_grad_(True)
    target_patches = patchify(img, patch)
    mean = target_patches.mean(dim=-1, keepdim=True)
    var = target_patches.var(dim=-1, keepdim=True)  # unbiased, as MAE's norm_pix_loss
    img_hat = unpatchify(pred * (var + 1e-6) ** 0.5 + mean, patch, 3)
    with torch.no_grad():
        target = torch.sigmoid(model(img))
    loss = F.binary_cross_entropy_with_logits(model(img_hat), target)
    loss.backward()
    save("cons_image", img.numpy())
    save("cons_pred", pred.detach().numpy())
    save("cons_loss", np.array([loss.item()]))
    save("cons_dpred", pred.grad.numpy())
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, loss {loss.item():.6f}, {len(names)} tensors")


if __name__ == "__main__":
    main()
