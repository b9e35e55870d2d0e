#!/usr/bin/python3
"""Small PNG files for tests/io/png_decode_test.cpp, written byte by byte (struct + zlib) so every
row filter, sample layout and kind of damage is chosen here, not by an encoder.

Outputs go to tests/data/png/:
  <name>.png            a file the reader must decode
  <name>.npy            the 8-bit gray image it must give (uint8, H x W): gray as stored, alpha
                        dropped, colour by PIL's convert('L') rounding, 16-bit by the high byte
  bad_<what>.png        damaged files the reader must refuse (format_error naming the file)
The filters are applied here as RFC 2083 defines them; the expected gray values are computed from
the unfiltered samples, so a decoder that undoes a filter wrongly cannot match.
"""
import os
import struct
import zlib

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "png")


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filter_rows(samples, bpp, filters):
    """samples: H x N uint8 (N = W * channels); filters: per-row filter type. Returns bytes."""
    out = bytearray()
    prev = np.zeros(samples.shape[1], dtype=np.int64)
    for i, row in enumerate(samples.astype(np.int64)):
        t = filters[i % len(filters)]
        out.append(t)
        for x in range(len(row)):
            a = row[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][t]
            out.append((row[x] - pred) & 0xFF)
        prev = row
    return bytes(out)


def png(w, h, depth, colour, raw, idat_size=None, extra_before=b"", extra_after=b"", ihdr=None):
    ihdr = ihdr or struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    z = zlib.compress(raw, 9)
    parts = [z] if idat_size is None else [z[i:i + idat_size] for i in range(0, len(z), idat_size)]
    body = b"".join(chunk(b"IDAT", p) for p in parts)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra_before + body + extra_after + chunk(b"IEND", b"")


def luma(rgb):
    r, g, b = (rgb[..., k].astype(np.uint32) for k in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def save(name, data, expected=None):
    with open(os.path.join(OUT, name + ".png"), "wb") as f:
        f.write(data)
    if expected is not None:
        np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(expected, dtype=np.uint8))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261201)
    all_filters = [0, 1, 2, 3, 4]

    # Gray, every filter on smooth and noisy rows.
    h, w = 23, 37
    gray = (np.add.outer(np.arange(h) * 7, np.arange(w) * 3) % 256).astype(np.uint8)
    gray[::3] = rng.integers(0, 256, (len(gray[::3]), w), dtype=np.uint8)
    # Paeth's ties (row 9 is Paeth-filtered): pb == pc < pa at column 1 (b wins), pa == pc < pb at
    # column 3 (a wins).
    gray[8, 0:4] = [100, 80, 100, 110]
    gray[9, 0] = 110
    gray[9, 2] = 80
    save("gray_filters", png(w, h, 8, 0, filter_rows(gray, 1, all_filters)), gray)
    # The same image in 40-byte IDAT chunks with ancillary chunks around them.
    text = chunk(b"tEXt", b"Comment\x00vasomim fixture")
    save("gray_split_idat", png(w, h, 8, 0, filter_rows(gray, 1, all_filters[::-1]), idat_size=40,
                                extra_before=text + chunk(b"gAMA", struct.pack(">I", 45455)),
                                extra_after=text), gray)
    save("gray_1x1", png(1, 1, 8, 0, filter_rows(np.array([[201]], np.uint8), 1, [4])), [[201]])
    save("gray_tall_column", png(1, 9, 8, 0, filter_rows(gray[:9, :1], 1, all_filters)), gray[:9, :1])

    # Multi-channel layouts: bpp 2, 3, 4 reach back that far in Sub / Average / Paeth.
    h, w = 11, 13
    for name, colour, ch in (("gray_alpha", 4, 2), ("rgb", 2, 3), ("rgba", 6, 4)):
        s = rng.integers(0, 256, (h, w, ch), dtype=np.uint8)
        s[1::2] = s[1::2] // 16 * 16 + 3  # smoother rows: predictions matter
        expected = s[..., 0] if ch == 2 else luma(s)
        save(name, png(w, h, 8, colour, filter_rows(s.reshape(h, w * ch), ch, all_filters)), expected)

    # Left to stb_image: palette and 16-bit (high byte kept).
    pal = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    idx = rng.integers(0, 4, (6, 5), dtype=np.uint8)
    save("palette", png(5, 6, 8, 3, filter_rows(idx, 1, [0]),
                        extra_before=chunk(b"PLTE", pal.tobytes())), luma(pal[idx]))
    g16 = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    save("gray16", png(7, 5, 16, 0, filter_rows(g16.astype(">u2").view(np.uint8).reshape(5, 14), 2, [0, 1])),
         (g16 >> 8).astype(np.uint8))

    # Damaged files.
    good = png(w, h, 8, 0, filter_rows(gray[:h, :w], 1, all_filters))
    raw = filter_rows(gray[:h, :w], 1, all_filters)
    idat_at = good.index(b"IDAT") + 4
    flipped = bytearray(good)
    flipped[idat_at + 10] ^= 0x40
    save("bad_crc", bytes(flipped))
    save("bad_truncated", good[: len(good) // 2])
    save("bad_no_iend", good[: -12])
    z = bytearray(zlib.compress(raw, 9))
    z[-1] ^= 1  # Adler-32
    hdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    save("bad_adler", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", hdr) + chunk(b"IDAT", bytes(z)) + chunk(b"IEND", b""))
    save("bad_short_data", png(w, h, 8, 0, raw[: -(w + 1)]))
    save("bad_long_data", png(w, h, 8, 0, raw + raw[: w + 1]))
    bad_filter = bytearray(raw)
    bad_filter[3 * (w + 1)] = 5
    save("bad_filter", png(w, h, 8, 0, bytes(bad_filter)))
    save("bad_no_idat", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", hdr) + chunk(b"IEND", b""))
    save("bad_zero_width", png(0, h, 8, 0, raw))
    save("bad_huge_claim", png(20000, 20000, 8, 0, raw))  # 400 MB of rows from a 150-byte stream
    save("bad_not_zlib", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", hdr) + chunk(b"IDAT", b"not a zlib stream")
         + chunk(b"IEND", b""))

    # Runs of Paeth rows (the reader unfilters four at a time) among other filters, on smooth rows
    # with noise (the predictor's three choices all occur), a width below the group and one above.
    for name, (h, w) in (("gray_paeth_runs", (27, 41)), ("gray_paeth_narrow", (9, 3))):
        g = (np.add.outer(np.arange(h) * 5, np.arange(w) * 2) % 256).astype(np.int64)
        g = np.clip(g + rng.integers(-20, 21, (h, w)), 0, 255).astype(np.uint8)
        runs = [4, 4, 4, 4, 4, 4, 4, 0, 4, 4, 1, 4, 4, 4, 4, 2, 4, 4, 4, 4, 4, 4, 4, 4, 3, 4, 4]
        save(name, png(w, h, 8, 0, filter_rows(g, 1, runs[:h])), g)

    # Long runs of Paeth rows (the reader takes 16 at a time in vector lanes, then four, then one):
    # runs of 16, 17, 21 and 5 rows between other filters.
    h, w = 63, 37
    g = (np.add.outer(np.arange(h) * 3, np.arange(w) * 7) % 256).astype(np.int64)
    g = np.clip(g + rng.integers(-30, 31, (h, w)), 0, 255).astype(np.uint8)
    runs = [4] * 16 + [0] + [4] * 17 + [1] + [4] * 21 + [2] + [4] * 5 + [3]
    save("gray_paeth_long", png(w, h, 8, 0, filter_rows(g, 1, runs)), g)


if __name__ == "__main__":
    main()
