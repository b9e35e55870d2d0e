#!/usr/bin/python3
"""Converts PyTorch checkpoints (.pth) to safetensors for vasomim, and back.

  /usr/bin/python3 tools/convert_torch_checkpoint.py IN.pth OUT.safetensors
      Reads a released checkpoint with torch.load(map_location='cpu'): {'model': state_dict, ...}
      (MAE / VasoMIM main_pretrain.py), {'state_dict': state_dict, ...}, a bare state_dict (UNeXt-S
      segmodel/unext.pth) or a pickled nn.Module. Writes every tensor of the state dict with its dtype
      kept (F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL) and names kept as they are (a DDP
      "module." prefix included: vasomim strips it when loading). The metadata says where it came
      from (source file, key, epoch). The optimiser state and the other entries are not converted.

  /usr/bin/python3 tools/convert_torch_checkpoint.py --to-torch IN.safetensors OUT.pth [--key model]
      Writes the tensors of a safetensors file (e.g. a vasomim checkpoint) as {'model': state_dict}
      for main_pretrain.py --resume, or as a bare state_dict with --key '' (what UNeXt-S's
      load_state_dict reads). Load it with strict=True only if the file holds every buffer the
      module has (vasomim writes num_batches_tracked as I64 where it keeps it).

On the C++ side: io::read_safetensors reads every dtype above as float, io::load_parameters with
state_dict_options{.prefix = "seg_model."} loads a part of a state dict (include/vasomim/io/).

torch 1.13 (Debian) has no safetensors package, so the format is written and read here: an 8-byte
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {}}
padded with spaces to a multiple of 8 bytes, then the raw little-endian data.
"""
import argparse
import collections
import json
import os
import struct
import sys

import numpy as np
import torch

# torch dtype -> (safetensors dtype, numpy dtype used for the raw bytes)
TO_SAFETENSORS = {
    torch.float32: ("F32", np.float32),
    torch.float64: ("F64", np.float64),
    torch.float16: ("F16", np.float16),
    torch.bfloat16: ("BF16", np.int16),  # numpy has no bfloat16: the bits travel as int16
    torch.int64: ("I64", np.int64),
    torch.int32: ("I32", np.int32),
    torch.int16: ("I16", np.int16),
    torch.int8: ("I8", np.int8),
    torch.uint8: ("U8", np.uint8),
    torch.bool: ("BOOL", np.bool_),
}
FROM_SAFETENSORS = {name: (dt, npdt) for dt, (name, npdt) in TO_SAFETENSORS.items()}

if sys.byteorder != "little":
    sys.exit("convert_torch_checkpoint.py: safetensors data is little-endian; this host is not")


def raw_bytes(t):
    """The tensor's values as contiguous little-endian bytes."""
    t = t.detach().cpu().contiguous().reshape(-1)
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    """tensors: ordered (name, torch.Tensor) pairs; metadata: str -> str."""
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, t in tensors:
        if t.dtype not in TO_SAFETENSORS:
            raise SystemExit(f"convert_torch_checkpoint.py: '{name}' has dtype {t.dtype}, which safetensors "
                             f"(as vasomim reads it) has no name for")
        blob = raw_bytes(t)
        header[name] = {"dtype": TO_SAFETENSORS[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read_safetensors(path):
    """Returns (ordered [(name, torch.Tensor)], metadata) in file (data offset) order."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise SystemExit(f"convert_torch_checkpoint.py: '{path}' is shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise SystemExit(f"convert_torch_checkpoint.py: '{path}': header length {n} exceeds the file size")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    out = []
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if e["dtype"] not in FROM_SAFETENSORS:
            raise SystemExit(f"convert_torch_checkpoint.py: '{path}': tensor '{name}' has dtype {e['dtype']}, "
                             f"which torch 1.13 cannot hold or this script does not know")
        dt, npdt = FROM_SAFETENSORS[e["dtype"]]
        b, end = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if end > len(body) or end - b != count * np.dtype(npdt).itemsize:
            raise SystemExit(f"convert_torch_checkpoint.py: '{path}': tensor '{name}' has data offsets "
                             f"{e['data_offsets']} that do not fit its shape {e['shape']} or the file")
        arr = np.frombuffer(body[b:end], dtype=npdt).copy()
        t = torch.from_numpy(arr)
        if dt == torch.bfloat16:
            t = t.view(torch.bfloat16)
        out.append((name, t.reshape(e["shape"])))
    return out, metadata


def extract_state_dict(obj, path):
    """(state_dict, key it was found under, epoch or None, other top-level keys)."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict(), "<module>.state_dict()", None, []
    if not isinstance(obj, dict):
        raise SystemExit(f"convert_torch_checkpoint.py: '{path}' holds a {type(obj).__name__}, not a state dict")
    for key in ("model", "state_dict"):
        if key in obj and isinstance(obj[key], dict):
            others = [k for k in obj if k != key]
            epoch = obj.get("epoch")
            return obj[key], key, epoch, others
    if obj and all(torch.is_tensor(v) for v in obj.values()):
        return obj, "", None, []
    raise SystemExit(f"convert_torch_checkpoint.py: '{path}' has neither a 'model' nor a 'state_dict' entry and "
                     f"is not a state dict itself (keys: {list(obj)[:8]})")


def dtype_summary(tensors):
    counts = collections.Counter(TO_SAFETENSORS[t.dtype][0] if t.dtype in TO_SAFETENSORS else str(t.dtype)
                                 for _, t in tensors)
    return ", ".join(f"{n} {d}" for d, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def to_safetensors(src, dst):
    obj = torch.load(src, map_location="cpu")
    sd, key, epoch, others = extract_state_dict(obj, src)
    tensors = []
    skipped = []
    for name, v in sd.items():
        if torch.is_tensor(v):
            tensors.append((name, v))
        else:
            skipped.append(name)
    metadata = {"format": "pt", "source": os.path.basename(src), "source_key": key,
                "converted_by": "tools/convert_torch_checkpoint.py", "torch": torch.__version__}
    if epoch is not None:
        metadata["epoch"] = str(epoch)
    write_safetensors(dst, tensors, metadata)
    where = f"checkpoint['{key}']" if key and not key.startswith("<") else (key or "the bare state dict")
    print(f"{src}: {len(tensors)} tensors from {where} ({dtype_summary(tensors)}) -> {dst} "
          f"({os.path.getsize(dst)} bytes)")
    ddp = sum(1 for n, _ in tensors if n.startswith("module."))
    if ddp:
        print(f"  {ddp} names start with 'module.' (DDP); kept as they are, vasomim strips the prefix when loading")
    if others:
        print(f"  not converted: {', '.join(map(str, others))}")
    if skipped:
        print(f"  skipped {len(skipped)} non-tensor entries of the state dict: {', '.join(skipped[:5])}")


def to_torch(src, dst, key):
    tensors, metadata = read_safetensors(src)
    sd = collections.OrderedDict(tensors)
    obj = {key: sd} if key else sd
    torch.save(obj, dst)
    where = f"{{'{key}': state_dict}}" if key else "a bare state dict"
    print(f"{src}: {len(tensors)} tensors ({dtype_summary(tensors)}) -> {dst} as {where}")
    if metadata:
        shown = {k: (v if len(v) <= 120 else v[:60] + f"... ({len(v)} characters)") for k, v in metadata.items()}
        print(f"  metadata of the source (not written): {json.dumps(shown)}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--to-torch", action="store_true", help="safetensors -> .pth instead of .pth -> safetensors")
    p.add_argument("--key", default="model", help="with --to-torch: the entry holding the state dict "
                   "('' writes a bare state dict); default 'model'")
    a = p.parse_args(argv)
    if a.to_torch:
        to_torch(a.input, a.output, a.key)
    else:
        to_safetensors(a.input, a.output)


if __name__ == "__main__":
    main()
