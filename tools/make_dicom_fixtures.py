#!/usr/bin/python3
"""Writes the DICOM fixtures of tests/io/dicom_test.cpp into tests/data/dicom/ (a few KB each).

Objects are made with pydicom (python3-pydicom) from small synthetic arrays; compressed and
big-endian variants with DCMTK's command-line tools (dcmtk: dcmcrle, dcmcjpeg, dcmcjpls, dcmconv).
For every fixture <name>.dcm the expected 8-bit frames (frames x rows x cols, uint8) are written to
<name>.npy: pydicom's pixel_array of the file (of its uncompressed source where pydicom has no decoder
for the lossless transfer syntax: JPEG lossless and JPEG-LS need plugins Debian does not ship), then the
steps of include/vasomim/io/dicom.hpp done in numpy (luminance as PIL, rescale, VOI LUT / window /
min-max, round half to even, MONOCHROME1 inverted). <name>_minmax.npy holds the min-max option's and
<name>_float.npy the float output where the test uses them.

Lossless JPEG streams with what DCMTK's encoder never writes (restart intervals, point transforms,
SSSS 16, codes longer than io/jpeg_lossless.hpp's lookup) are encoded here (encode_lossless_jpeg,
ITU-T T.81 Annex H, written from the standard) into tests/data/jpeg_lossless/<name>.jpg with the
samples they hold (<name>.npy, uint16) and into DICOM fixtures; DCMTK decoding those fixtures too is
what shows the encoder follows the standard (DicomReader.BuiltinLosslessJpegEqualsDcmtk).

Usage: /usr/bin/python3 tools/make_dicom_fixtures.py [OUT_DIR]
       /usr/bin/python3 tools/make_dicom_fixtures.py --pydicom-files OUT_DIR   (references for pydicom's
       own test files, for a check outside the suite; nothing is written to the repository)
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_pixel_data_frame
from pydicom.uid import (ExplicitVRLittleEndian, JPEG2000Lossless, SecondaryCaptureImageStorage,
                         generate_uid)

XA = "1.2.840.10008.5.1.4.1.1.12.1"  # X-Ray Angiographic Image Storage
JPEG_LOSSLESS_P14 = "1.2.840.10008.1.2.4.57"  # any predictor
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"  # predictor 1


def dataset(pixels, photometric="MONOCHROME2", bits_stored=None, signed=False, sop=XA, planar=0, **extra):
    """A Part 10 object, explicit VR little endian, from frames x rows x cols (x 3) samples."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(pixels.shape), photometric, str(extra)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series"])
    ds.Modality = "XA" if sop == XA else "OT"
    ds.PatientName = "Fixture^Synthetic"
    ds.PatientID = "0"
    colour = pixels.ndim == 4
    frames, rows, cols = pixels.shape[:3]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if colour:
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
    for k, v in extra.items():
        setattr(ds, k, v)
    data = pixels
    if colour and planar == 1:
        data = np.ascontiguousarray(np.moveaxis(pixels, -1, 1))  # frames x 3 x rows x cols
    ds.PixelData = data.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def expected(ds, stored, mode="file"):
    """The steps of dicom.hpp on pydicom's stored values: returns (uint8 frames, float frames)."""
    a = stored.reshape((int(getattr(ds, "NumberOfFrames", 1) or 1),) + stored.shape[-3 if ds.SamplesPerPixel == 3 else -2:])
    colour = ds.SamplesPerPixel == 3
    if colour:
        if ds.PhotometricInterpretation.startswith("YBR"):  # pydicom leaves JPEG's YCbCr as it is; DCMTK gives RGB
            from pydicom.pixel_data_handlers.util import convert_color_space
            a = convert_color_space(a, ds.PhotometricInterpretation, "RGB")
        a = a.astype(np.int64)
        v = ((a[..., 0] * 19595 + a[..., 1] * 38470 + a[..., 2] * 7471 + 0x8000) >> 16).astype(np.float64)
        slope, intercept = 1.0, 0.0
    else:
        v = a.astype(np.float64)
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
        if slope != 1.0:
            v = v * slope
        if intercept != 0.0:
            v = v + intercept
    y = None
    if mode == "file" and not colour and "VOILUTSequence" in ds:
        item = ds.VOILUTSequence[0]
        n, first, bits = [int(x) for x in item.LUTDescriptor]
        n = n or 65536
        lut = np.frombuffer(item.LUTData, dtype="<u2") if isinstance(item.LUTData, bytes) else np.asarray(item.LUTData)
        idx = np.clip(np.floor(v).astype(np.int64) - first, 0, n - 1)
        y = lut[idx].astype(np.float64) * (255.0 / float((1 << bits) - 1))
    elif mode == "file" and not colour and "WindowCenter" in ds:
        wc = ds.WindowCenter
        ww = ds.WindowWidth
        c = float(wc[0] if isinstance(wc, pydicom.multival.MultiValue) else wc)
        w = float(ww[0] if isinstance(ww, pydicom.multival.MultiValue) else ww)
        lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
        y = np.where(v <= lo, 0.0, np.where(v > hi, 255.0, ((v - (c - 0.5)) / (w - 1) + 0.5) * 255.0))
    elif mode == "file" and ds.BitsAllocated == 8 and ds.PixelRepresentation == 0 and slope == 1.0 and intercept == 0.0:
        y = v
    else:
        y = np.empty_like(v)
        for k in range(v.shape[0]):
            mn, mx = v[k].min(), v[k].max()
            y[k] = (v[k] - mn) * 255.0 / (mx - mn) if mx > mn else 0.0
    c = np.clip(y, 0.0, 255.0)
    u8 = np.rint(c).astype(np.uint8)
    mono1 = ds.PhotometricInterpretation == "MONOCHROME1"
    if mono1:
        u8 = (255 - u8).astype(np.uint8)
        c = 255.0 - c
    return u8, c.astype(np.float32)


def encode_lossless_jpeg(img, precision, predictor, pt=0, restart_rows=0, comment=b"vasomim fixture"):
    """One component, Huffman-coded lossless JPEG (SOF3) of `img` (rows x cols, values < 2^precision),
    predictor 1-7, point transform pt, a restart interval of restart_rows rows (0: none)."""
    x = np.asarray(img, dtype=np.int64) >> pt
    rows, cols = x.shape
    rr = restart_rows or rows
    # A fixed prefix code over SSSS 0..16 (Kraft sum 1 - 2^-15: no all-ones code), long enough for
    # large differences to need more than 11 bits of code.
    lengths = [3, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    order = sorted(range(17), key=lambda v: (lengths[v], v))
    codes, code, prev = {}, 0, lengths[order[0]]
    for v in order:
        code <<= lengths[v] - prev
        prev = lengths[v]
        codes[v] = (code, lengths[v])
        code += 1
    bits = [sum(1 for v in order if lengths[v] == n) for n in range(1, 17)]

    out, acc, nacc = bytearray(), 0, 0

    def put(value, n):
        nonlocal acc, nacc
        acc, nacc = (acc << n) | (value & ((1 << n) - 1)), nacc + n
        while nacc >= 8:
            b = (acc >> (nacc - 8)) & 0xFF
            nacc -= 8
            out.append(b)
            acc &= (1 << nacc) - 1
            if b == 0xFF:
                out.append(0)  # byte stuffing

    def flush():  # pad with ones to a byte boundary
        if nacc % 8:
            put((1 << (8 - nacc % 8)) - 1, 8 - nacc % 8)

    for i in range(rows):
        if i % rr == 0 and i > 0:
            flush()
            out.extend(b"\xff" + bytes([0xD0 + (i // rr - 1) % 8]))
        for j in range(cols):
            if i % rr == 0:
                px = (1 << (precision - pt - 1)) if j == 0 else x[i, j - 1]
            elif j == 0:
                px = x[i - 1, 0]
            else:
                ra, rb, rc = int(x[i, j - 1]), int(x[i - 1, j]), int(x[i - 1, j - 1])
                px = {1: ra, 2: rb, 3: rc, 4: ra + rb - rc, 5: ra + ((rb - rc) >> 1), 6: rb + ((ra - rc) >> 1),
                      7: (ra + rb) >> 1}[predictor]
            d = (int(x[i, j]) - int(px)) % 65536
            d = d - 65536 if d >= 32768 else d
            s = 16 if d == -32768 else abs(d).bit_length()
            put(*codes[s])
            if 0 < s < 16:
                put(d if d > 0 else d + (1 << s) - 1, s)
    flush()

    def segment(marker, body):
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    stream = b"\xff\xd8" + segment(0xFE, comment)
    stream += segment(0xC4, bytes([0x00] + bits + order))
    if restart_rows:
        stream += segment(0xDD, (restart_rows * cols).to_bytes(2, "big"))
    stream += segment(0xC3, bytes([precision]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + bytes([1, 1, 0x11, 0]))
    stream += segment(0xDA, bytes([1, 1, 0x00, predictor, 0, pt]))
    return stream + bytes(out) + b"\xff\xd9"


def run(*cmd):
    subprocess.run(cmd, check=True)


def make(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20)
    yy, xx = np.mgrid[0:24, 0:32]
    # A vessel-like dark curve on a smooth background.
    curve = np.abs(yy - (12 + 5 * np.sin(xx / 5.0))) < 2.0
    base8 = (60 + 2 * xx + yy).astype(np.uint8)
    base8[curve] = 20
    frames8 = np.stack([np.roll(base8, 3 * k, axis=1) + rng.integers(0, 8, base8.shape).astype(np.uint8) for k in range(5)])
    base16 = (300 + 40 * xx + 25 * yy).astype(np.uint16)
    base16[curve] = 150
    frames16 = np.stack([np.roll(base16, 2 * k, axis=0) + rng.integers(0, 64, base16.shape).astype(np.uint16)
                         for k in range(3)]) & 0x0FFF

    written = {}

    def save(name, ds, sources=None, modes=("file",), floats=False):
        path = os.path.join(out, name + ".dcm")
        ds.save_as(path, write_like_original=False)
        written[name] = (path, sources, modes, floats)
        return path

    save("mono8", dataset(frames8[:1]))
    save("mono8_multiframe", dataset(frames8), modes=("file", "minmax"))
    save("mono16_minmax", dataset(frames16[:1], bits_stored=12), floats=True)
    save("mono16_rescale", dataset(frames16[:1], bits_stored=12, RescaleSlope="2", RescaleIntercept="-1024",
                                   WindowCenter="1200", WindowWidth="2200"), floats=True)
    save("mono16_window", dataset(frames16[:1], bits_stored=12, WindowCenter=["1100", "800"],
                                  WindowWidth=["1001", "400"]), modes=("file", "minmax"), floats=True)
    lut_ds = dataset(frames16[:1], bits_stored=12)
    item = Dataset()
    lut = (np.sqrt(np.arange(2048) / 2047.0) * 255).astype(np.uint16)  # values below 256 clamp to entry 0
    item.LUTDescriptor = [2048, 256, 8]
    item.LUTData = lut.astype("<u2").tobytes()
    lut_ds.VOILUTSequence = [item]
    save("mono16_voilut", lut_ds)
    save("monochrome1", dataset(frames16[:1], photometric="MONOCHROME1", bits_stored=12, WindowCenter="1300",
                                WindowWidth="1700"), floats=True)
    signed = (frames16[:1].astype(np.int32) - 2048).astype(np.int16)
    save("signed16", dataset(signed, bits_stored=16, signed=True))
    rgb = np.stack([frames8[:2], np.roll(frames8[:2], 5, axis=2), 255 - frames8[:2]], axis=-1).astype(np.uint8)
    save("rgb", dataset(rgb, photometric="RGB", sop=SecondaryCaptureImageStorage))
    save("rgb_planar", dataset(rgb[:1], photometric="RGB", sop=SecondaryCaptureImageStorage, planar=1))

    # Compressed and big-endian variants of a 16-bit and an 8-bit multi-frame object (DCMTK's tools).
    src16 = save("multi16", dataset(frames16, bits_stored=12, WindowCenter="1200", WindowWidth="2400"))
    src8 = written["mono8_multiframe"][0]
    src_rgb = written["rgb"][0]
    variants = [
        ("multi16_rle", ["dcmcrle", src16], "multi16"),
        ("multi16_jpeg_lossless", ["dcmcjpeg", src16], "multi16"),            # process 14 SV1
        ("multi16_jpeg_lossless_p14", ["dcmcjpeg", "+el", "+sv", "2", src16], "multi16"),
        ("multi16_jpegls", ["dcmcjpls", src16], "multi16"),
        ("multi16_bigendian", ["dcmconv", "+tb", src16], "multi16"),
        ("multi16_implicit", ["dcmconv", "+ti", src16], "multi16"),
        ("mono8_jpeg_baseline", ["dcmcjpeg", "+eb", src8], None),              # lossy: pydicom (Pillow) decodes it
        ("mono8_jpegls", ["dcmcjpls", src8], "mono8_multiframe"),
        ("rgb_rle", ["dcmcrle", src_rgb], "rgb"),
    ]
    # Lossless JPEG: DCMTK's encoder at the other predictors and on the 8-bit run.
    variants += [("mono8_jpeg_lossless", ["dcmcjpeg", src8], "mono8_multiframe"),
                 ("rgb_jpeg_lossless", ["dcmcjpeg", src_rgb], "rgb")]  # three components: DCMTK decodes
    variants += [("multi16_jpeg_lossless_sv%d" % v, ["dcmcjpeg", "+el", "+sv", str(v), src16], "multi16")
                 for v in (3, 4, 5, 6, 7)]
    for name, cmd, source in variants:
        path = os.path.join(out, name + ".dcm")
        run(*cmd, path)
        written[name] = (path, source, ("file",), False)

    def encapsulated(like, streams, syntax=JPEG_LOSSLESS_P14, **extra):
        ds = dataset(like, **extra)
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate(streams["frames"], fragments_per_frame=streams.get("fragments", 1),
                                   has_bot=streams.get("offsets", True))
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.is_little_endian, ds.is_implicit_VR = True, False
        return ds

    # The same frames in two fragments each with a Basic Offset Table, and in three without one.
    lossless16 = pydicom.dcmread(written["multi16_jpeg_lossless"][0])
    frames = list(generate_pixel_data_frame(lossless16.PixelData, len(frames16)))
    save("multi16_jpeg_lossless_fragments",
         encapsulated(frames16, {"frames": frames, "fragments": 2}, JPEG_LOSSLESS_SV1, bits_stored=12, WindowCenter="1200",
                      WindowWidth="2400"), frames16)
    save("multi16_jpeg_lossless_fragments_no_table",
         encapsulated(frames16, {"frames": frames, "fragments": 3, "offsets": False}, JPEG_LOSSLESS_SV1, bits_stored=12,
                      WindowCenter="1200", WindowWidth="2400"), frames16)
    # Streams encoded here: restart intervals, point transform, SSSS 16, long codes.
    jdir = os.path.join(out, "..", "jpeg_lossless")
    os.makedirs(jdir, exist_ok=True)
    pt12 = [encode_lossless_jpeg(f, 12, 5, pt=1, restart_rows=2) for f in frames16]
    save("mono12_jpeg_lossless_restart", encapsulated(frames16, {"frames": pt12}, bits_stored=12),
         (frames16 >> 1) << 1)
    full16 = np.random.default_rng(57).integers(0, 65536, (2, 24, 32)).astype(np.uint16)
    full16[:, 0, ::2] = 32768  # the first row predicts from the left: differences of 32768 (SSSS 16)
    full16[:, 0, 1::2] = 0
    full16[1] = np.sort(full16[1], axis=1)  # smoother: short codes too
    p16 = [encode_lossless_jpeg(f, 16, 7, restart_rows=5) for f in full16]
    save("full16_jpeg_lossless_restart", encapsulated(full16, {"frames": p16}, bits_stored=16), full16)
    for name, stream, samples in [("p12_pred5_pt1_restart2", pt12[0], (frames16[0] >> 1) << 1),
                                  ("p16_pred7_restart5", p16[0], full16[0]),
                                  ("p8_pred1_dcmtk", generate_pixel_data_frame(
                                      pydicom.dcmread(written["mono8_jpeg_lossless"][0]).PixelData, 5).__next__(),
                                   frames8[0])]:
        with open(os.path.join(jdir, name + ".jpg"), "wb") as f:
            f.write(stream)
        np.save(os.path.join(jdir, name + ".npy"), samples.astype(np.uint16))

    # JPEG 2000: the library refuses the transfer syntax; the fragment is a J2K codestream start only.
    j2k = dataset(frames8[:1])
    j2k.file_meta.TransferSyntaxUID = JPEG2000Lossless
    j2k.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
    j2k["PixelData"].VR = "OB"
    j2k["PixelData"].is_undefined_length = True
    j2k.is_little_endian, j2k.is_implicit_VR = True, False
    j2k.save_as(os.path.join(out, "jpeg2000_refused.dcm"), write_like_original=False)
    nopix = dataset(frames8[:1])
    del nopix.PixelData
    nopix.save_as(os.path.join(out, "no_pixel_data.dcm"), write_like_original=False)
    with open(os.path.join(out, "garbage.dcm"), "wb") as f:
        f.write(rng.integers(0, 256, 700).astype(np.uint8).tobytes())

    for name, (path, source, modes, floats) in written.items():
        ds = pydicom.dcmread(path)
        if isinstance(source, np.ndarray):  # the samples this script encoded
            stored, how = source, "the samples encoded"
        else:
            try:
                stored = ds.pixel_array
                how = "pixel_array"
            except Exception as e:  # no pydicom decoder for this transfer syntax: its lossless source
                if source is None:
                    raise
                stored = pydicom.dcmread(written[source][0]).pixel_array
                how = "pixel_array of %s.dcm (%s)" % (source, type(e).__name__)
        for mode in modes:
            u8, f32 = expected(ds, stored, mode)
            np.save(os.path.join(out, name + ("" if mode == "file" else "_" + mode) + ".npy"), u8)
            if floats and mode == "file":
                np.save(os.path.join(out, name + "_float.npy"), f32)
        print("%-28s %-48s %s" % (name, ds.file_meta.TransferSyntaxUID.name, how))


def pydicom_files(out):
    """References for pydicom's own test files (not part of the suite: python3-pydicom is optional)."""
    root = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")  # shipped files only
    lossless_of = {"MR_small_jpeg_ls_lossless.dcm": "MR_small.dcm", "MR_small_RLE.dcm": "MR_small.dcm",
                   "emri_small_jpeg_ls_lossless.dcm": "emri_small.dcm"}
    os.makedirs(out, exist_ok=True)
    names = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
             "MR_small_expb.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "CT_small.dcm",
             "SC_rgb.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_rle_16bit.dcm", "SC_rgb_jpeg_dcmtk.dcm",
             "JPEG-lossy.dcm", "JPEG2000.dcm", "emri_small.dcm", "emri_small_RLE.dcm", "emri_small_big_endian.dcm",
             "emri_small_jpeg_ls_lossless.dcm", "rtdose_rle.dcm", "OBXXXX1A.dcm", "OBXXXX1A_rle.dcm"]
    for n in names:
        p = os.path.join(root, n)
        if not os.path.exists(p):
            continue
        try:
            ds = pydicom.dcmread(p)
            try:
                stored = ds.pixel_array
            except Exception:
                if n not in lossless_of:
                    raise
                stored = pydicom.dcmread(os.path.join(root, lossless_of[n])).pixel_array
            u8, _ = expected(ds, stored)
        except Exception as e:
            print("%-34s pydicom cannot decode: %s" % (n, str(e).splitlines()[0][:90]))
            continue
        shutil.copy(p, os.path.join(out, n))
        np.save(os.path.join(out, n[:-4] + ".npy"), u8)
        print("%-34s %s" % (n, ds.file_meta.TransferSyntaxUID.name))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--pydicom-files":
        pydicom_files(sys.argv[2])
    else:
        make(sys.argv[1] if len(sys.argv) > 1 else
             os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "dicom"))
