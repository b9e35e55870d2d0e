#!/usr/bin/python3
"""Reference ridge filters and pseudo-label pipeline for vasomim's vessel/ parity tests.

scikit-image >= 0.20 is not installable from Debian (bookworm ships 0.19.3, whose Hessian differs),
so this module restates the semantics of skimage 0.20's filters.frangi / sato / meijering and
feature.hessian_matrix(use_gaussian_derivatives=True) on top of scipy.ndimage.gaussian_filter,
exactly as /work/shared/DESIGN.md section 4.1 describes them:

- input cast to float (float32 stays float32, integers become float64), never rescaled;
  black_ridges=False negates the image;
- Hessian per sigma: two successive first-order Gaussian-derivative passes of
  scipy.ndimage.gaussian_filter, each at sigma/sqrt(2), truncate = 8 if sigma > 1 else 100;
  Hrr = d_r(d_r I), Hrc = d_c(d_r I), Hcc = d_c(d_c I);
- eigenvalues (Hrr+Hcc)/2 +- sqrt(Hrc^2 + ((Hrr-Hcc)/2)^2), decreasing;
- frangi: eigenvalues sorted by magnitude (ties keep the decreasing order), lambda2 clipped at 1e-10
  for r_b only, s from the unclipped values, gamma = max(s)/2 at the FIRST sigma (1 if 0) and
  reused for the others;
- sato: sigma^2 * max(largest eigenvalue, 0);
- meijering: l_i = e_i + alpha * e_j (alpha = 1/3 in 2-D), the one largest in magnitude (first on
  ties), clipped at 0, divided by its per-sigma maximum when positive;
- all: pixel-wise maximum over sigmas, starting from zeros.

The pseudo-label pipeline is the released VasoMIM preprocessing: sato(uint8 image, sigmas 1..4,
black ridges), cast to uint8 (truncation; clamped at 255), border zeroed, values below the numpy
percentile (linear) zeroed, then the 4-connected region of nonzero pixels grown from the first
maximum (row-major) with a pure-Python flood fill, output 0/255.

Run as a script to regenerate tests/data/vessel/*.npy (see main()).
"""
import math
import os
import sys
from collections import deque

import numpy as np
from scipy import ndimage as ndi


def supported_float_type(dtype):
    """skimage's _supported_float_type: float32 (and float16) -> float32, anything else -> float64."""
    dtype = np.dtype(dtype)
    if dtype in (np.float16, np.float32):
        return np.float32
    return np.float64


def hessian(image, sigma, mode="reflect", cval=0.0):
    """[Hrr, Hrc, Hcc] by two first-order Gaussian-derivative passes at sigma/sqrt(2)."""
    image = image.astype(supported_float_type(image.dtype), copy=False)
    truncate = 8 if sigma > 1 else 100
    s = sigma / math.sqrt(2)
    g = lambda x, order: ndi.gaussian_filter(x, sigma=(s, s), order=order, mode=mode, cval=cval,
                                             truncate=truncate)
    d_r = g(image, (1, 0))
    d_c = g(image, (0, 1))
    return [g(d_r, (1, 0)), g(d_r, (0, 1)), g(d_c, (0, 1))]


def eigvals(H):
    hrr, hrc, hcc = H
    e = np.empty((2,) + hrr.shape, hrr.dtype)
    e[:] = (hrr + hcc) / 2
    half = np.sqrt(hrc ** 2 + ((hrr - hcc) / 2) ** 2)
    e[0] += half
    e[1] -= half
    return e


def _prepare(image, black_ridges):
    image = image.astype(supported_float_type(image.dtype), copy=False)
    return image if black_ridges else -image


def frangi(image, sigmas=range(1, 10, 2), alpha=0.5, beta=0.5, gamma=None, black_ridges=True,
           mode="reflect", cval=0.0):
    image = _prepare(image, black_ridges)
    out = np.zeros_like(image)
    for sigma in sigmas:
        e = eigvals(hessian(image, sigma, mode, cval))
        e = np.take_along_axis(e, np.abs(e).argsort(0, kind="stable"), 0)
        l1 = e[0]
        l2 = np.maximum(e[1], 1e-10)
        rb = np.abs(l1) / l2
        s = np.sqrt((e ** 2).sum(0))
        if gamma is None:
            gamma = s.max() / 2
            if gamma == 0:
                gamma = 1
        v = np.exp(-rb ** 2 / (2 * beta ** 2))
        v *= 1.0 - np.exp(-s ** 2 / (2 * gamma ** 2))
        out = np.maximum(out, v)
    return out


def sato(image, sigmas=range(1, 10, 2), black_ridges=True, mode="reflect", cval=0.0):
    image = _prepare(image, black_ridges)
    out = np.zeros_like(image)
    for sigma in sigmas:
        e = eigvals(hessian(image, sigma, mode, cval))
        out = np.maximum(out, sigma ** 2 * np.maximum(e[0], 0))
    return out


def meijering(image, sigmas=range(1, 10, 2), alpha=None, black_ridges=True, mode="reflect",
              cval=0.0):
    image = _prepare(image, black_ridges)
    if alpha is None:
        alpha = 1 / (image.ndim + 1)
    out = np.zeros_like(image)
    for sigma in sigmas:
        e = eigvals(hessian(image, sigma, mode, cval))
        n = np.stack([e[0] + alpha * e[1], alpha * e[0] + e[1]])
        v = np.take_along_axis(n, np.abs(n).argmax(0)[None], 0)[0]
        v = np.maximum(v, 0)
        m = v.max()
        if m > 0:
            v /= m
        out = np.maximum(out, v)
    return out


# ---- the released pseudo-label pipeline ----------------------------------------------------------

def to_uint8(response):
    return np.minimum(response, 255).astype(np.uint8)


def zero_border(image, border):
    out = image.copy()
    if border > 0:
        out[:border, :] = 0
        out[-border:, :] = 0
        out[:, :border] = 0
        out[:, -border:] = 0
    return out


def threshold_percentile(image, q):
    t = np.percentile(image, q)
    return np.where(image >= t, image, np.zeros_like(image))


def region_grow(image):
    """Pure-Python 4-connected flood fill of nonzero pixels from the first maximum (as released)."""
    h, w = image.shape
    mask = np.zeros((h, w), np.uint8)
    seed = divmod(int(np.argmax(image)), w)
    if image[seed] == 0:
        return mask
    pixels = image.tolist()
    seen = [[False] * w for _ in range(h)]
    seen[seed[0]][seed[1]] = True
    queue = deque([seed])
    while queue:
        r, c = queue.popleft()
        mask[r, c] = 255
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h and 0 <= cc < w and not seen[rr][cc] and pixels[rr][cc] != 0:
                seen[rr][cc] = True
                queue.append((rr, cc))
    return mask


def pseudo_label(image_u8, sigmas=(1, 2, 3, 4), border=20, percentile=92.0, return_steps=False):
    response = sato(image_u8, sigmas=sigmas, black_ridges=True)
    v = zero_border(to_uint8(response), border)
    mask = region_grow(threshold_percentile(v, percentile))
    return (mask, response, v) if return_steps else mask


# ---- fixtures -------------------------------------------------------------------------------------

def synthetic_vessels(h=64, w=72, seed=3):
    """A bright background with three dark curved vessels of different widths and mild noise."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.full((h, w), 190.0)
    for (a, b, f, width, depth) in [(0.35, 0.15, 0.09, 1.2, 70), (0.6, -0.1, 0.05, 2.5, 90),
                                    (0.15, 0.3, 0.13, 0.8, 50)]:
        centre = a * h + b * c + 6 * np.sin(f * c)
        img -= depth * np.exp(-((r - centre) ** 2) / (2 * width ** 2))
    img += rng.normal(0, 3, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def coronary_dir():
    env = os.environ.get("VASOMIM_CORONARY80")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "shared", "data", "coronary80")


def load_gray(path):
    from PIL import Image
    return np.asarray(Image.open(path).convert("L"))


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    save = lambda name, a: np.save(os.path.join(out_dir, name + ".npy"), a)
    f32 = lambda a: np.asarray(a, np.float32)

    # Random float32 image smaller than the sigma=1 kernel (radius 71): boundary modes at work.
    rng = np.random.default_rng(20260501)
    rnd = rng.random((37, 53)).astype(np.float32)
    save("random_input", rnd)
    save("random_frangi", f32(frangi(rnd)))
    save("random_sato", f32(sato(rnd)))
    save("random_meijering", f32(meijering(rnd)))
    save("random_frangi_white", f32(frangi(rnd, black_ridges=False)))
    save("random_frangi_params", f32(frangi(rnd, sigmas=[1.5, 2.5], alpha=0.3, beta=0.8, gamma=0.05)))
    save("random_meijering_alpha", f32(meijering(rnd, sigmas=[0.8, 2], alpha=-0.25, black_ridges=False)))
    for mode in ["constant", "nearest", "mirror", "wrap", "reflect"]:
        save(f"random_sato_{mode}", f32(sato(rnd, sigmas=[1, 2.5], mode=mode, cval=0.75)))
    # Hessian and Gaussian derivatives on their own (float64 in, float64 out).
    rnd64 = rnd[:19, :23].astype(np.float64)
    for sigma in (1.0, 2.5):
        save(f"random_hessian_s{sigma:g}", np.stack(hessian(rnd64, sigma, "reflect")))
    tiny = rnd64[:5, :4]
    for mode in ["reflect", "constant", "nearest", "mirror", "wrap"]:
        save(f"tiny_gaussian_{mode}", np.stack([
            ndi.gaussian_filter(tiny, sigma=(1.7, 0.9), order=(1, 0), mode=mode, cval=0.3, truncate=6),
            ndi.gaussian_filter(tiny, sigma=(1.7, 0.9), order=(0, 2), mode=mode, cval=0.3, truncate=6),
            ndi.gaussian_filter(tiny, sigma=(0.6, 2.2), order=(3, 0), mode=mode, cval=0.3, truncate=4)]))
    save("tiny_input", tiny)

    # Synthetic vessels, uint8 (computed in float64 like skimage).
    syn = synthetic_vessels()
    save("synthetic_input", syn)
    save("synthetic_frangi", f32(frangi(syn)))
    save("synthetic_sato", f32(sato(syn)))
    save("synthetic_meijering", f32(meijering(syn)))
    mask, resp, v = pseudo_label(syn, border=5, return_steps=True)
    save("synthetic_pipeline_sato", f32(resp))
    save("synthetic_pipeline_uint8", v)
    save("synthetic_pipeline_mask", mask)

    # coronary80 training images: the inputs are not copied; outputs subsampled [::6, ::6] plus the
    # full maxima (the parity bar is relative to max |reference| over the whole image) and the full
    # pseudo-label mask, bit-packed.
    src = coronary_dir()
    for name in ["training_01", "training_07", "training_23"]:
        img = load_gray(os.path.join(src, "images", name + ".png"))
        outs = {"frangi": frangi(img), "sato": sato(img), "meijering": meijering(img)}
        mask, resp, v = pseudo_label(img, return_steps=True)
        outs["pipeline_sato"] = resp
        maxima = []
        for key, val in outs.items():
            save(f"{name}_{key}_sub6", f32(val[::6, ::6]))
            maxima.append(np.abs(val).max())
        save(f"{name}_maxima", np.array(maxima, np.float64))
        save(f"{name}_pipeline_uint8_sub6", v[::6, ::6])
        save(f"{name}_mask_packed", np.packbits(mask.ravel() > 0))
        print(name, "vessel pixels", int((mask > 0).sum()), "maxima", maxima)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "data", "vessel"))
