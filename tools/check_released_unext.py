#!/usr/bin/python3
"""Opt-in check of the released UNeXt-S (XA-SSL segmodel/unext.pth) against vasomim's.

The released weights are not part of the project and are never committed: extract them yourself,
e.g. from a clone of github.com/Dxhuang-CASIA/XA-SSL (the file is 1 MB, stored in git, not LFS):

  git -C XA-SSL show HEAD:segmodel/unext.pth > /tmp/unext.pth
  /usr/bin/python3 tools/check_released_unext.py /tmp/unext.pth \
      --program build/ci/examples/vasomim-train-segmentor/vasomim-train-segmentor

What it does (everything on coronary80 `training_*` only; `testing_*` is never read):
  1. converts the .pth with tools/convert_torch_checkpoint.py to OUT/unext.safetensors;
  2. loads the .pth into the PyTorch restatement of tools/make_unext_fixtures.py,
     UNextS(in_channels=3): its state_dict keys must equal the file's keys, strict load;
  3. makes the released inputs: each 300 x 300 gray angiogram opened as RGB (gray replicated), resized
     to 224 x 224 with PIL's BICUBIC (Image.resize, antialiased), ToTensor (x/255) and ImageNet
     normalisation per channel (mean 0.485 0.456 0.406, std 0.229 0.224 0.225); expert masks resized
     with NEAREST. The resized 8-bit images are written as PNG (OUT/images224) so that vasomim reads
     exactly the same pixels;
  4. runs the PyTorch model in float64, eval mode, and vasomim's 3-channel UNeXt-S (float32) through
     `vasomim-train-segmentor --init OUT/unext.safetensors --iterations 0 --save-logits`, and
     compares the logits S(I): max |difference| must be within 1e-4 of max |S(I)|;
  5. reports the released segmentor's Dice (sigmoid > 0.5, i.e. logit > 0) against the expert
     masks, mean over the images: at 224 x 224 (masks resized nearest), at the native 300 x 300
     (224 logits resized bilinearly back to 300, as one would upsample a prediction), and the native
     image fed directly (zero-padded to 320 in normalised space, what vasomim-train-segmentor's
     evaluation does), by both implementations.

Writes OUT/summary.json; exit status 1 when the S(I) check fails.
"""
import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from make_unext_fixtures import UNextS  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
SIZE = 224


def normalise(rgb8):
    """H x W x 3 uint8 -> 3 x H x W float64, ToTensor + Normalize."""
    x = rgb8.astype(np.float64) / 255.0
    return ((x - MEAN) / STD).transpose(2, 0, 1)


def dice(pred, ref):
    s = pred.sum() + ref.sum()
    return 2.0 * np.logical_and(pred, ref).sum() / s if s > 0 else 1.0


def run_program(program, args):
    cmd = [program] + args
    print("  $ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write("".join("    " + l + "\n" for l in r.stdout.splitlines()))
    if r.returncode != 0:
        sys.exit(f"check_released_unext.py: {program} failed ({r.returncode}):\n{r.stderr}")
    m = re.search(r"vs expert: pseudo-label [0-9.]+, segmentor ([0-9.]+)", r.stdout)
    return float(m.group(1)) if m else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pth", help="the released segmodel/unext.pth")
    p.add_argument("--data", default=os.environ.get("VASOMIM_CORONARY80", os.path.join(ROOT, "..", "shared", "data",
                                                                                         "coronary80")),
                   help="coronary80 folder (images/, masks/); env VASOMIM_CORONARY80")
    p.add_argument("--out", default="/tmp/released_unext", help="work folder (weights, inputs, logits, summary)")
    p.add_argument("--program", default=os.path.join(ROOT, "build", "ci", "examples", "vasomim-train-segmentor",
                                                     "vasomim-train-segmentor"),
                   help="vasomim-train-segmentor executable")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |S(I) difference| / max |S(I)|")
    a = p.parse_args()

    with open(a.pth, "rb") as f:
        head = f.read(200)
    if head.startswith(b"version https://git-lfs"):
        sys.exit(f"check_released_unext.py: {a.pth} is a git-lfs pointer, not the weights")
    if not os.path.isdir(os.path.join(a.data, "images")):
        sys.exit(f"check_released_unext.py: no coronary80 at {a.data} (--data or VASOMIM_CORONARY80)")
    if not os.access(a.program, os.X_OK):
        sys.exit(f"check_released_unext.py: no executable {a.program} (build vasomim-train-segmentor, --program)")
    os.makedirs(a.out, exist_ok=True)
    torch.set_grad_enabled(False)

    # 1. conversion
    weights = os.path.join(a.out, "unext.safetensors")
    subprocess.run([sys.executable, os.path.join(HERE, "convert_torch_checkpoint.py"), a.pth, weights], check=True)

    # 2. strict load into the restatement
    sd = torch.load(a.pth, map_location="cpu")
    model = UNextS(in_channels=3)
    if list(model.state_dict().keys()) != list(sd.keys()):
        mk, fk = set(model.state_dict().keys()), set(sd.keys())
        sys.exit(f"check_released_unext.py: keys differ: only in the model {sorted(mk - fk)}, only in the file "
                 f"{sorted(fk - mk)} (or the order differs)")
    model.load_state_dict(sd, strict=True)
    model = model.double().eval()
    print(f"released state_dict: {len(sd)} keys, equal to UNextS(in_channels=3)'s, strict load ok; "
          f"encoder1.weight {tuple(sd['encoder1.weight'].shape)}")

    # 3. inputs (training_* only)
    names = sorted(f[:-4] for f in os.listdir(os.path.join(a.data, "images"))
                   if f.startswith("training_") and f.endswith(".png"))
    if not names:
        sys.exit("check_released_unext.py: no training_* images")
    dirs = {k: os.path.join(a.out, k) for k in ("images224", "masks224", "labels224", "labels_native", "logits224",
                                                 "logits_native")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    x224, m224, x_nat, m_nat = [], [], [], []
    for n in names:
        img = Image.open(os.path.join(a.data, "images", n + ".png")).convert("RGB")
        msk = Image.open(os.path.join(a.data, "masks", n + "_gt.png")).convert("L")
        small = img.resize((SIZE, SIZE), Image.BICUBIC)
        msmall = msk.resize((SIZE, SIZE), Image.NEAREST)
        s8 = np.asarray(small)
        assert (s8[..., 0] == s8[..., 1]).all() and (s8[..., 0] == s8[..., 2]).all()
        Image.fromarray(s8[..., 0]).save(os.path.join(dirs["images224"], n + ".png"))
        mb = np.asarray(msmall) >= 128
        mimg = Image.fromarray((mb * 255).astype(np.uint8))
        mimg.save(os.path.join(dirs["masks224"], n + "_gt.png"))
        mimg.save(os.path.join(dirs["labels224"], n + ".png"))  # the program wants labels: the expert masks
        nb = np.asarray(msk) >= 128
        Image.fromarray((nb * 255).astype(np.uint8)).save(os.path.join(dirs["labels_native"], n + ".png"))
        x224.append(normalise(s8))
        m224.append(mb)
        x_nat.append(normalise(np.asarray(img)))
        m_nat.append(nb)
    x224 = np.stack(x224)
    np.save(os.path.join(a.out, "inputs224.npy"), x224.astype(np.float32))

    # 4. PyTorch float64, eval mode
    z224 = np.concatenate([model(torch.from_numpy(x224[i:i + 8])).numpy() for i in range(0, len(names), 8)])[:, 0]
    np.save(os.path.join(a.out, "torch_logits224.npy"), z224.astype(np.float32))
    H, W = m_nat[0].shape
    Hp, Wp = (H + 31) // 32 * 32, (W + 31) // 32 * 32
    xp = np.zeros((len(names), 3, Hp, Wp))
    xp[:, :, :H, :W] = np.stack(x_nat)
    zpad = np.concatenate([model(torch.from_numpy(xp[i:i + 8])).numpy() for i in range(0, len(names), 8)])[:, 0, :H, :W]
    zup = F.interpolate(torch.from_numpy(z224)[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0].numpy()

    # vasomim, 3-channel UNeXt-S, float32
    print("vasomim-train-segmentor on the same 224 x 224 inputs:")
    lib_d224 = run_program(a.program, ["--images", dirs["images224"], "--labels", dirs["labels224"], "--masks",
                                       dirs["masks224"], "--channels", "3", "--init", weights, "--iterations", "0",
                                       "--save-logits", dirs["logits224"]])
    print("vasomim-train-segmentor on the native images (zero-padded to 32-multiples):")
    lib_dnat = run_program(a.program, ["--images", os.path.join(a.data, "images"), "--prefix", "training_",
                                       "--labels", dirs["labels_native"], "--masks", os.path.join(a.data, "masks"),
                                       "--channels", "3", "--init", weights, "--iterations", "0", "--save-logits",
                                       dirs["logits_native"]])
    l224 = np.stack([np.load(os.path.join(dirs["logits224"], n + ".npy")) for n in names]).astype(np.float64)
    lnat = np.stack([np.load(os.path.join(dirs["logits_native"], n + ".npy")) for n in names]).astype(np.float64)

    scale224, scalenat = np.abs(z224).max(), np.abs(zpad).max()
    diff224, diffnat = np.abs(l224 - z224).max(), np.abs(lnat - zpad).max()
    rel224, relnat = diff224 / scale224, diffnat / scalenat
    mean = lambda f: float(np.mean([f(i) for i in range(len(names))]))
    s = {
        "images": len(names),
        "interpolation": "PIL BICUBIC 300x300 -> 224x224 (images, as RGB), NEAREST (masks)",
        "max_abs_diff_224": float(diff224), "max_abs_logit_224": float(scale224), "rel_diff_224": float(rel224),
        "max_abs_diff_native_padded": float(diffnat), "max_abs_logit_native_padded": float(scalenat),
        "rel_diff_native_padded": float(relnat),
        "sign_disagreements_224": int(((l224 > 0) != (z224 > 0)).sum()),
        "dice_torch_224": mean(lambda i: dice(z224[i] > 0, m224[i])),
        "dice_vasomim_224": mean(lambda i: dice(l224[i] > 0, m224[i])),
        "dice_program_224": lib_d224,
        "dice_torch_224_upsampled_to_native": mean(lambda i: dice(zup[i] > 0, m_nat[i])),
        "dice_torch_native_padded": mean(lambda i: dice(zpad[i] > 0, m_nat[i])),
        "dice_vasomim_native_padded": mean(lambda i: dice(lnat[i] > 0, m_nat[i])),
        "dice_program_native_padded": lib_dnat,
    }
    s["pass"] = bool(rel224 <= a.tolerance and relnat <= a.tolerance)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(s, f, indent=1)
    print(f"S(I) at 224 x 224 ({len(names)} training images): max |vasomim - torch| {diff224:.3e}, max |S(I)| "
          f"{scale224:.3f}, relative {rel224:.2e} (tolerance {a.tolerance:g}); {s['sign_disagreements_224']} pixels "
          f"change sign")
    print(f"S(I) native, padded to {Hp} x {Wp}: max |diff| {diffnat:.3e}, max |S(I)| {scalenat:.3f}, relative "
          f"{relnat:.2e}")
    print(f"released UNeXt-S Dice vs expert masks (sigmoid > 0.5, mean over {len(names)} training_* images):")
    print(f"  224 x 224 (masks nearest):            torch {s['dice_torch_224']:.4f}  vasomim {s['dice_vasomim_224']:.4f}")
    print(f"  224 logits bilinear to 300 x 300:     torch {s['dice_torch_224_upsampled_to_native']:.4f}")
    print(f"  native 300 x 300 (zero-padded input): torch {s['dice_torch_native_padded']:.4f}  vasomim "
          f"{s['dice_vasomim_native_padded']:.4f}")
    print("PASS" if s["pass"] else "FAIL", "-", os.path.join(a.out, "summary.json"))
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
