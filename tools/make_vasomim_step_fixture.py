#!/usr/bin/python3
"""PyTorch reference for one VasoMIM pre-training step (tests/model/vasomim_step_test.cpp).

Reuses the MAE restatement of tools/make_mae_fixtures.py and the UNeXt-S restatement of
tools/make_unext_fixtures.py (imported, not copied). One step of the composed model, DESIGN 1:
  G      = 0.5 * B + 0.5 * sigmoid(S(I))                  (guidance map, S frozen in eval mode)
  L_rec  = MAE norm-pix loss with a given mask (ids_keep / ids_restore of a fixed permutation)
  I_hat  = unpatchify(P * sqrt(var + 1e-6) + mean)        (per-patch stats of I, unbiased var)
  L_cons = BCEWithLogits(S(I_hat), sigmoid(S(I)) detached)
  L      = L_rec + L_cons, backward; the gradients of every MAE parameter are stored; then one
           AdamW step with the released add_weight_decay groups.
S is UNeXt-S with 3 input channels as released (XA-SSL models_vmae.py: seg_model(imgs),
seg_model(recon_imgs)), with generic closed-form weights that differ per input channel; the
ImageNet-normalised gray images differ per channel, and I_hat's channels always do.
Small configuration: 64 x 64 images (UNeXt-S needs multiples of 32), patch 8, width 64, depth 2,
4 heads, decoder 32 wide with 1 block of 4 heads, batch 2, mask ratio 0.75.

The whole reference runs in float64 on float32-representable inputs and parameters (Debian's
torch 1.13 float32 CPU backward of UNeXt-S is unusable, see make_unext_fixtures.py); stored values
are rounded to float32. UNeXt-S parameters and running statistics follow the closed formula of
make_unext_fixtures.py (the C++ side repeats it, tests/nn/unext_fixture.hpp), so they are not
stored (1 MB). Outputs in tests/data/vasomim_step/:
  imgs.npy [2,3,64,64]        ImageNet-normalised vessel-like images (grayscale replicated)
  labels.npy [2,64,64]        binary pseudo-labels B
  ids_shuffle.npy             the given mask in MAE's convention (int64; len_keep = 4 of 64)
  ids_keep.npy, ids_restore.npy  the rest of that mask as MAE derives it (int64)
  logits.npy [2,1,64,64]      S(gray(I))
  guidance.npy [2,64,64]      G
  losses.npy                  [L_rec, L_cons, L] (float64)
  params.safetensors          MAE state_dict before the step
  grads.safetensors           gradients of every trainable MAE parameter
  params_step1.safetensors    MAE state_dict after one AdamW step (lr 1e-2, betas 0.9/0.95,
                              eps 1e-8, weight decay 0.05 for every tensor except 1-D ones and
                              *.bias: cls_token and mask_token decayed; lr chosen so that the
                              decay of the tokens, lr * wd * |p|, is far above float round-off)
  grads_cons.safetensors      gradients of L_cons alone for the trainable MAE tensors of at most
                              6144 elements (every bias, norm and token, the decoder): L_cons
                              adds only ~1% to the gradient of L, so the test also checks it alone

  /usr/bin/python3 tools/make_vasomim_step_fixture.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

import make_mae_fixtures as mae_ref
import make_unext_fixtures as unext_ref

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "vasomim_step")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def vessel_images(n, size, rng):
    """Dark, curved, branching tubes of varying width on a bright, slightly shaded background
    (an angiogram caricature) and their binary masks (pixels inside a tube)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    imgs, masks = [], []
    for _ in range(n):
        dist_over_r = np.full((size, size), np.inf)
        for _ in range(4):
            t = np.linspace(0.0, 1.0, 200)
            p0, p1, p2 = rng.uniform(0, size, 2), rng.uniform(0, size, 2), rng.uniform(0, size, 2)
            cx = (1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t ** 2 * p2[0]
            cy = (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t ** 2 * p2[1]
            r = rng.uniform(1.0, 3.0) * (1.0 - 0.5 * t)  # tapering
            d = np.sqrt((xx[..., None] - cx) ** 2 + (yy[..., None] - cy) ** 2) / r
            dist_over_r = np.minimum(dist_over_r, d.min(axis=-1))
        background = 0.75 + 0.1 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
        gray = background - 0.45 * np.exp(-0.5 * dist_over_r ** 2) + 0.02 * rng.standard_normal((size, size))
        imgs.append(np.clip(gray, 0.0, 1.0))
        masks.append((dist_over_r <= 1.0).astype(np.float32))
    gray = np.stack(imgs)[:, None]  # [n, 1, s, s]
    rgb = (np.repeat(gray, 3, axis=1) - IMAGENET_MEAN[None, :, None, None]) / IMAGENET_STD[None, :, None, None]
    return rgb.astype(np.float32), np.stack(masks)


def save(name, a, dtype=np.float32):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(a, dtype=dtype)))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(7)
    size, patch, n = 64, 8, 2
    cfg = dict(img_size=size, patch_size=patch, in_chans=3, embed_dim=64, depth=2, num_heads=4,
               decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=4, mlp_ratio=4.0, norm_pix_loss=True)
    mae = mae_ref.MaskedAutoencoderViT(**cfg)  # MAE init in float32, then run in float64
    mae_ref.write_safetensors(os.path.join(OUT, "params.safetensors"), mae.state_dict())
    mae = mae.double()

    seg = unext_ref.UNextS(in_channels=3).double()
    unext_ref.set_params(seg)
    seg.eval()
    for p in seg.parameters():
        p.requires_grad_(False)

    imgs_np, labels_np = vessel_images(n, size, rng)
    imgs = torch.from_numpy(imgs_np).double()
    labels = torch.from_numpy(labels_np).double()
    L = (size // patch) ** 2
    len_keep = int(L * (1 - 0.75))
    ids_shuffle = torch.stack([torch.randperm(L) for _ in range(n)])

    # guidance and consistency target: S(I) once, detached
    with torch.no_grad():
        logits = seg(imgs)
    guidance = 0.5 * labels + 0.5 * torch.sigmoid(logits[:, 0])

    loss_rec, pred, mask, ids_keep, ids_restore = mae(imgs, ids_shuffle, len_keep)
    target_patches = unext_ref.patchify(imgs, patch)
    mean = target_patches.mean(dim=-1, keepdim=True)
    var = target_patches.var(dim=-1, keepdim=True)  # unbiased, as MAE's norm_pix_loss
    img_hat = unext_ref.unpatchify(pred * (var + 1e-6) ** 0.5 + mean, patch, 3)
    loss_cons = F.binary_cross_entropy_with_logits(seg(img_hat), torch.sigmoid(logits))
    loss_cons.backward(retain_graph=True)
    grads_cons = {k: p.grad.clone() for k, p in mae.named_parameters() if p.requires_grad and p.numel() <= 6144}
    mae.zero_grad()
    loss = loss_rec + loss_cons
    loss.backward()

    # one AdamW step with the released groups (main_pretrain.py add_weight_decay)
    decay = [p for k, p in mae.named_parameters() if p.requires_grad and not (p.ndim == 1 or k.endswith(".bias"))]
    no_decay = [p for k, p in mae.named_parameters() if p.requires_grad and (p.ndim == 1 or k.endswith(".bias"))]
    assert any(p is mae.cls_token for p in decay) and any(p is mae.mask_token for p in decay)
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.05}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    opt.step()
    mae_ref.write_safetensors(os.path.join(OUT, "params_step1.safetensors"), mae.state_dict())

    save("imgs", imgs_np)
    save("labels", labels_np)
    save("ids_shuffle", ids_shuffle.numpy(), np.int64)
    save("ids_keep", ids_keep.numpy(), np.int64)
    save("ids_restore", ids_restore.numpy(), np.int64)
    save("logits", logits.numpy())
    save("guidance", guidance.numpy())
    save("losses", [loss_rec.item(), loss_cons.item(), loss.item()], np.float64)
    mae_ref.write_safetensors(os.path.join(OUT, "grads.safetensors"),
                              {k: p.grad for k, p in mae.named_parameters() if p.requires_grad})
    mae_ref.write_safetensors(os.path.join(OUT, "grads_cons.safetensors"), grads_cons)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"L_rec {loss_rec.item():.6f} L_cons {loss_cons.item():.6f} L {loss.item():.6f}; "
          f"vessel share {labels_np.mean():.3f}; G in [{guidance.min().item():.3f}, {guidance.max().item():.3f}]; "
          f"{len(os.listdir(OUT))} files, {total} bytes")


if __name__ == "__main__":
    main()
