#!/usr/bin/python3
"""Fixtures for tests/metrics/segmentation_metrics_test.cpp: scikit-image's 2-D skeletons and the
segmentation scores computed in numpy, for random masks and for real expert masks.

The oracle is Debian's python3-skimage (`apt-get install -y python3-skimage`; written against
scikit-image 0.19.3, whose 2-D `skeletonize` default is Zhang's method: `_fast_skeletonize` of
skimage/morphology/_skeletonize_cy.pyx). The script checks both: the version, and that the default
call equals method='zhang' on every mask.

Outputs (tests/data/metrics/):
  table.npy           uint8 (256,): scikit-image's deletion table, read from the installed Cython
                      source (0 never, 1 first sub-iteration, 2 second, 3 both); the test compares
                      it with metrics::detail::skeleton_table
  case_NN.npy         uint8 (4, H, ceil(W / 8)): pred, ref, skeleton(pred), skeleton(ref), each row
                      packed with np.packbits (first pixel in the most significant bit)
  cases.npy           float64 (cases, 15): H, W, the 7 counts (|P|, |G|, |P and G|, |S(P)|,
                      |S(G)|, |S(P) and G|, |S(G) and P|), then Dice, clDice, sensitivity, precision,
                      Tprec, Tsens, in numpy
  case_names.txt      one line per case: what it is
  real_skeletons.npy  uint8 (masks, 300, 38): packed skeletons of coronary80 masks/training_NN_gt.png
                      binarised at >= 128 (the data set's README); the masks themselves are not
                      copied, the test reads them from ../shared/data/coronary80 and skips without them
  real_index.npy      float64 (masks, 15): per listed mask NN (as P) against the next listed mask
                      (as G, cyclically): NN of P, NN of G, the 7 counts, the 6 scores (as cases.npy)
  summary.npy         float64 (2, 6): mean and std (ddof 0) of the 6 scores over the random cases

Usage: /usr/bin/python3 tools/make_metrics_fixtures.py [--coronary80 DIR] [--time [DIR]]
  --time  also times skimage's skeletonize per 512 x 512 mask (the 40 coronary80 training masks
          resized nearest to 512 x 512) for benchmarks/README.md; with DIR, writes those masks there
          as PNG (0/255) so that `vasomim-metrics --pred DIR --ref DIR` times the library on them
"""
import argparse
import os
import re
import sys
import time

import numpy as np

try:
    import skimage
    from skimage.morphology import skeletonize
except ImportError:
    sys.exit("scikit-image is missing: apt-get install -y python3-skimage (run with /usr/bin/python3)")
from scipy import ndimage as ndi

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "metrics")
REAL_MASKS = [1, 5, 9, 13, 17, 21, 26, 30, 35, 40]  # training_NN only (development split)


def skel(mask):
    s = skeletonize(mask.astype(bool))
    z = skeletonize(mask.astype(bool), method="zhang")
    assert np.array_equal(s, z), "skeletonize's 2-D default is not method='zhang' in this version"
    return s.astype(bool)


def ratio(num, den, both_empty):
    if den == 0:
        return 1.0 if both_empty else 0.0
    return num / den


def counts_and_scores(p, g):
    p = p != 0
    g = g != 0
    sp, sg = skel(p), skel(g)
    n = [int(p.sum()), int(g.sum()), int((p & g).sum()), int(sp.sum()), int(sg.sum()),
         int((sp & g).sum()), int((sg & p).sum())]
    both_empty = n[0] == 0 and n[1] == 0
    dice = ratio(2 * n[2], n[0] + n[1], both_empty)
    sens = ratio(n[2], n[1], both_empty)
    prec = ratio(n[2], n[0], both_empty)
    tprec = ratio(n[5], n[3], both_empty)
    tsens = ratio(n[6], n[4], both_empty)
    cl = 2 * tprec * tsens / (tprec + tsens) if tprec + tsens > 0 else 0.0
    return sp, sg, n, [dice, cl, sens, prec, tprec, tsens]


def skimage_table():
    """The lookup table as written in the installed Cython source."""
    import skimage.morphology as m
    src = os.path.join(os.path.dirname(m.__file__), "_skeletonize_cy.pyx")
    text = open(src).read()
    body = re.search(r"cdef int \*lut = \\\s*\[([^\]]*)\]", text).group(1)
    lut = np.array([int(v) for v in body.replace("\n", " ").split(",")], dtype=np.uint8)
    assert lut.shape == (256,)
    return lut


# ---- random masks --------------------------------------------------------------------------------

def blobs(rng, h, w, sigma, frac):
    f = ndi.gaussian_filter(rng.standard_normal((h, w)), sigma)
    return f > np.quantile(f, 1 - frac)


def draw_line(m, r0, c0, r1, c1, width=1):
    n = max(abs(r1 - r0), abs(c1 - c0)) + 1
    rr = np.rint(np.linspace(r0, r1, n)).astype(int)
    cc = np.rint(np.linspace(c0, c1, n)).astype(int)
    for dr in range(width):
        for dc in range(width):
            ok = (rr + dr < m.shape[0]) & (cc + dc < m.shape[1])
            m[rr[ok] + dr, cc[ok] + dc] = True


def lines(rng, h, w, count, width):
    m = np.zeros((h, w), bool)
    for _ in range(count):
        draw_line(m, rng.integers(h), rng.integers(w), rng.integers(h), rng.integers(w), width)
    return m


def perturb(rng, m, kind):
    if kind == "dilate":
        return ndi.binary_dilation(m)
    if kind == "erode":
        return ndi.binary_erosion(m)
    if kind == "shift":
        return np.roll(m, (1, 2), axis=(0, 1))
    if kind == "flip":
        return m ^ (rng.random(m.shape) < 0.05)
    raise ValueError(kind)


def random_cases():
    rng = np.random.default_rng(17)
    cases = []  # (name, pred, ref)

    def add(name, p, g):
        cases.append((name, np.asarray(p, bool), np.asarray(g, bool)))

    # blobs of several sizes, odd included, against perturbed copies
    for (h, w, sigma, frac, kind) in [(64, 64, 3, 0.3, "dilate"), (97, 131, 4, 0.25, "erode"),
                                      (128, 128, 6, 0.4, "shift"), (45, 77, 2, 0.5, "flip"),
                                      (200, 151, 8, 0.2, "dilate")]:
        g = blobs(rng, h, w, sigma, frac)
        add(f"blobs {h}x{w} sigma {sigma} vs {kind}", perturb(rng, g, kind), g)
    # thin lines (1 and 2 pixels wide) and thick lines
    for (h, w, count, width, kind) in [(64, 64, 6, 1, "dilate"), (99, 73, 10, 2, "shift"),
                                       (128, 96, 8, 3, "erode"), (57, 57, 12, 1, "flip")]:
        g = lines(rng, h, w, count, width)
        add(f"lines {h}x{w} x{count} width {width} vs {kind}", perturb(rng, g, kind), g)
    # noise of several densities
    for (h, w, d) in [(33, 47, 0.5), (64, 64, 0.2), (50, 31, 0.8), (16, 16, 0.95)]:
        add(f"noise {h}x{w} density {d}", rng.random((h, w)) < d, rng.random((h, w)) < d)
    # masks touching the borders
    full = np.ones((21, 35), bool)
    add("full 21x35 vs full", full, full)
    frame = np.zeros((40, 52), bool)
    frame[:, :6] = True
    frame[:4, :] = True
    frame[30:, 40:] = True
    add("border bars 40x52 vs border blobs", frame, blobs(rng, 40, 52, 3, 0.5) | frame[::-1, ::-1])
    b = blobs(rng, 90, 67, 5, 0.6)
    add("blobs 90x67 touching borders (60%) vs 70%", b, blobs(rng, 90, 67, 5, 0.7))
    # one pixel wide shapes and tiny images
    row = np.zeros((1, 13), bool)
    row[0, 2:11] = True
    add("1x13 row segment vs itself", row, row)
    col = np.zeros((11, 1), bool)
    col[1:, 0] = True
    add("11x1 column vs shorter", col, np.roll(col, 3, axis=0) & col)
    add("1x1 foreground vs background", np.ones((1, 1), bool), np.zeros((1, 1), bool))
    add("2x2 full vs full", np.ones((2, 2), bool), np.ones((2, 2), bool))
    add("3x3 full vs cross", np.ones((3, 3), bool), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
    diag = np.eye(25, 31, dtype=bool) | np.eye(25, 31, k=5, dtype=bool)
    add("25x31 diagonals vs their dilation", diag, ndi.binary_dilation(diag))
    ring = np.zeros((31, 31), bool)
    yy, xx = np.mgrid[:31, :31]
    r = np.hypot(yy - 15, xx - 15)
    ring[(r > 8) & (r < 13)] = True
    add("31x31 ring vs disk", ring, r < 13)
    checker = (yy + xx) % 2 == 0
    add("31x31 checkerboard vs ring", checker, ring)
    thick_l = np.zeros((19, 23), bool)
    thick_l[3:17, 4:6] = True
    thick_l[15:17, 4:20] = True
    thin_l = np.zeros((19, 23), bool)
    thin_l[3:17, 4] = True
    thin_l[16, 4:20] = True
    add("2-wide L 19x23 vs 1-wide", thick_l, thin_l)
    # empty cases
    e = np.zeros((12, 17), bool)
    g = blobs(rng, 12, 17, 2, 0.3)
    add("empty vs empty", e, e)
    add("empty pred vs blobs", e, g)
    add("blobs pred vs empty", g, e)
    add("disjoint halves", np.pad(np.ones((12, 8), bool), ((0, 0), (0, 9))),
        np.pad(np.ones((12, 8), bool), ((0, 0), (9, 0))))
    return cases


def pack(*masks):
    return np.stack([np.packbits(m.astype(np.uint8), axis=-1) for m in masks]).astype(np.uint8)


def read_mask(path):
    from PIL import Image
    a = np.asarray(Image.open(path).convert("L"))
    return a >= 128


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coronary80", default=os.path.join(ROOT, "..", "shared", "data", "coronary80"))
    ap.add_argument("--time", nargs="?", const="", default=None, metavar="DIR")
    args = ap.parse_args()

    print(f"scikit-image {skimage.__version__}, numpy {np.__version__}")
    if skimage.__version__ != "0.19.3":
        print("warning: the fixtures were written against scikit-image 0.19.3", file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "table.npy"), skimage_table())

    rows, names, scores = [], [], []
    for i, (name, p, g) in enumerate(random_cases()):
        assert p.shape == g.shape, name
        sp, sg, n, s = counts_and_scores(p, g)
        np.save(os.path.join(OUT, f"case_{i:02d}.npy"), pack(p, g, sp, sg))
        rows.append([p.shape[0], p.shape[1], *n, *s])
        scores.append(s)
        names.append(name)
    np.save(os.path.join(OUT, "cases.npy"), np.array(rows, dtype=np.float64))
    scores = np.array(scores)
    np.save(os.path.join(OUT, "summary.npy"), np.stack([scores.mean(axis=0), scores.std(axis=0)]))
    with open(os.path.join(OUT, "case_names.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"{len(rows)} random cases")

    masks_dir = os.path.join(args.coronary80, "masks")
    if not os.path.isdir(masks_dir):
        print(f"coronary80 not found at {args.coronary80}: real-mask fixtures not written", file=sys.stderr)
        return
    masks = [read_mask(os.path.join(masks_dir, f"training_{k:02d}_gt.png")) for k in REAL_MASKS]
    skels, index = [], []
    for j, (k, m) in enumerate(zip(REAL_MASKS, masks)):
        jn = (j + 1) % len(REAL_MASKS)
        sp, _, n, s = counts_and_scores(m, masks[jn])
        skels.append(np.packbits(sp.astype(np.uint8), axis=-1))
        index.append([k, REAL_MASKS[jn], *n, *s])
    np.save(os.path.join(OUT, "real_skeletons.npy"), np.stack(skels).astype(np.uint8))
    np.save(os.path.join(OUT, "real_index.npy"), np.array(index, dtype=np.float64))
    print(f"{len(REAL_MASKS)} coronary80 training masks: skeleton pixels "
          f"{[int(np.unpackbits(s, axis=-1)[:, :300].sum()) for s in skels]}")

    if args.time is not None:
        idx = (np.arange(512) * 300) // 512
        big = [m[np.ix_(idx, idx)] for m in
               (read_mask(os.path.join(masks_dir, f"training_{k:02d}_gt.png")) for k in range(1, 41))]
        if args.time:
            from PIL import Image
            os.makedirs(args.time, exist_ok=True)
            for k, m in enumerate(big, 1):
                Image.fromarray(m.astype(np.uint8) * 255).save(os.path.join(args.time, f"training_{k:02d}.png"))
        skeletonize(big[0])
        best = []
        for _ in range(5):
            t0 = time.perf_counter()
            for m in big:
                skeletonize(m)
            best.append((time.perf_counter() - t0) / len(big))
        print(f"skimage {skimage.__version__} skeletonize, 40 coronary80 training masks resized to 512 x 512: "
              f"{1e3 * min(best):.2f} ms per mask (best of 5)")


if __name__ == "__main__":
    main()
