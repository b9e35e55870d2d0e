#!/usr/bin/env bash
# DICOM cine runs (issue 20): frames per second of the library's reader against DCMTK's own tools on
# the same JPEG-lossless XA run (1024 x 1024 by default), and of the pseudo-label program on that
# run's frames against the same frames as PNG files. The run is made from coronary80 training_*
# angiograms (bicubic upscaling to SIZE x SIZE; never the held-out testing_* images).
#
# Usage: benchmarks/dicom_cine_vs_dcmtk.sh BUILD_DIR [DATA_DIR] [FRAMES] [SIZE]
#   BUILD_DIR  a Release build with benchmarks and examples (e.g. build/ci)
#   DATA_DIR   default ../shared/data/coronary80; FRAMES default 32; SIZE default 1024
set -euo pipefail
build=$(realpath "$1")
data=${2:-$(dirname "$0")/../../shared/data/coronary80}
frames=${3:-32}
size=${4:-1024}
[[ -d $data/images ]] || { echo "no $data/images: pass the coronary80 folder" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The run: explicit little endian XA object written with pydicom, JPEG lossless (process 14, SV1)
# by DCMTK's dcmcjpeg; the same frames as PNGs.
/usr/bin/python3 - "$data/images" "$work" "$frames" "$size" <<'PY'
import glob, os, sys
import numpy as np
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
src, out, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
files = sorted(glob.glob(os.path.join(src, "training_*.png")))
os.makedirs(os.path.join(out, "png"))
stack = []
for k in range(n):
    im = Image.open(files[k % len(files)]).convert("L").resize((size, size), Image.BICUBIC)
    im.save(os.path.join(out, "png", "cine_f%03d.png" % k))
    stack.append(np.asarray(im))
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1"  # X-Ray Angiographic Image Storage
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "XA"
ds.Rows = ds.Columns = size
ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
ds.BitsAllocated = ds.BitsStored = 8
ds.HighBit, ds.PixelRepresentation, ds.NumberOfFrames = 7, 0, n
ds.PixelData = np.stack(stack).astype(np.uint8).tobytes()
ds.is_little_endian, ds.is_implicit_VR = True, False
ds.save_as(os.path.join(out, "raw.dcm"), write_like_original=False)
PY
dcmcjpeg "$work/raw.dcm" "$work/cine.dcm"
echo "cine run: $frames frames of $size x $size, JPEG lossless, $(stat -c %s "$work/cine.dcm") bytes"

rate() { awk -v n="$frames" -v t="$1" 'BEGIN { printf "%.1f", n / t }'; }
seconds() {  # median wall time of 5 runs of a command
  local ts=()
  for _ in 1 2 3 4 5; do
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
    ts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
  done
  printf '%s\n' "${ts[@]}" | sort -g | sed -n 3p
}

echo
echo "== decoding to 8-bit frames"
bench=$(VASOMIM_BENCH_DICOM="$work/cine.dcm" "$build/benchmarks/dicom_decode_benchmark" --benchmark_repetitions=5 \
        --benchmark_report_aggregates_only=true 2>/dev/null)
lib=$(awk '/builtin.*_median/ { print $2 / 1000 }' <<<"$bench")      # seconds for every frame
lib_dcmtk=$(awk '/dcmtk.*_median/ { print $2 / 1000 }' <<<"$bench")
djpeg=$(seconds dcmdjpeg "$work/cine.dcm" "$work/decoded.dcm")
j2pnm=$(seconds dcmj2pnm +Fa "$work/cine.dcm" "$work/frame")
printf '  vasomim io::dicom_reader (open + every frame): %s frames/s\n' "$(rate "$lib")"
printf '    the same with DCMTK decoding (lossless_jpeg = dcmtk): %s frames/s\n' "$(rate "$lib_dcmtk")"
printf '  DCMTK dcmdjpeg (to an uncompressed file):      %s frames/s\n' "$(rate "$djpeg")"
printf '  DCMTK dcmj2pnm +Fa (every frame to PGM):       %s frames/s\n' "$(rate "$j2pnm")"
awk -v a="$lib" -v b="$djpeg" -v c="$j2pnm" -v d="$lib_dcmtk" \
  'BEGIN { printf "  ratio: %.2fx dcmdjpeg, %.2fx dcmj2pnm, %.2fx the reader with DCMTK decoding\n", b / a, c / a, d / a }'

echo
echo "== pseudo-labels (vasomim-vesselness --pseudo-label, all cores)"
prog="$build/examples/vasomim-vesselness/vasomim-vesselness"
cine=$(seconds "$prog" --pseudo-label --overwrite "$work/cine.dcm" -o "$work/out_dcm")
raw=$(seconds "$prog" --pseudo-label --overwrite "$work/raw.dcm" -o "$work/out_raw")
png=$(seconds "$prog" --pseudo-label --overwrite "$work/png" -o "$work/out_png")
printf '  frames of the cine run: %s frames/s\n' "$(rate "$cine")"
printf '  the same run uncompressed: %s frames/s\n' "$(rate "$raw")"
printf '  the same frames as PNG: %s images/s\n' "$(rate "$png")"
for f in "$work"/out_png/*.png; do
  cmp -s "$f" "$work/out_dcm/$(basename "$f")" || { echo "  MISMATCH: $(basename "$f")"; exit 1; }
done
echo "  pseudo-labels of the cine run equal those of the PNGs, frame for frame"
