#!/usr/bin/python3
"""Fixtures for tests/io/state_dict_test.cpp and tests/io/safetensors_test.cpp (tests/data/checkpoint/).

Builds small state dicts IN PyTorch, saves them with torch.save as a released checkpoint would be
saved, and converts them with tools/convert_torch_checkpoint.py (run as a program, as a user runs it):

  toy_vasomim.safetensors   from {'model': state_dict, 'optimizer': ..., 'epoch': 3}: MAE-like names
                            (cls_token, pos_embed, patch_embed.proj.*, blocks.0.*, decoder_pred.*, F32)
                            and a tiny segmentor under 'seg_model.': encoder1 (conv 1->2, F32),
                            ebn1 (BatchNorm, F64), decoder1 (conv 2->2, F32), dbn1 (BatchNorm, F32),
                            final (1x1 conv, F32); both BatchNorms ran 3 training batches, so their
                            num_batches_tracked are I64 3. Values set by hand (see below) so the test
                            can state them: encoder1.bias = [0.25, -0.5], ebn1.running_var = [0.1, 3].
  toy_vasomim_ddp.safetensors   the same state dict with DDP's 'module.' before every name, saved
                            as {'state_dict': ...}.
  all_dtypes.safetensors    a bare state dict with one tensor per dtype (F32, F64, F16, BF16, I64, I32,
                            I16, I8, U8, BOOL) holding values the test spells out.

  /usr/bin/python3 tools/make_checkpoint_fixtures.py
"""
import collections
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "tests", "data", "checkpoint"))
CONVERT = os.path.join(HERE, "convert_torch_checkpoint.py")


class TinySegmentor(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder1 = nn.Conv2d(1, 2, 3, padding=1)
        self.ebn1 = nn.BatchNorm2d(2)
        self.decoder1 = nn.Conv2d(2, 2, 3, padding=1)
        self.dbn1 = nn.BatchNorm2d(2)
        self.final = nn.Conv2d(2, 1, 1)

    def forward(self, x):
        x = torch.relu(self.ebn1(self.encoder1(x).to(self.ebn1.weight.dtype)).float())
        x = torch.relu(self.dbn1(self.decoder1(x)))
        return self.final(x)


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)


class TinyVasoMIM(nn.Module):
    def __init__(self, dim=4, patch=2):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim), requires_grad=False)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        self.blocks = nn.ModuleList([Block(dim)])
        self.decoder_pred = nn.Linear(dim, patch * patch * 3)
        self.seg_model = TinySegmentor()


def convert(src, dst):
    subprocess.run([sys.executable, CONVERT, src, dst], check=True)


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    m = TinyVasoMIM()
    m.seg_model.ebn1.double()  # an F64 part, as a checkpoint saved from a float64 run has
    m.seg_model.train()
    with torch.no_grad():
        for _ in range(3):  # num_batches_tracked -> 3, running statistics move
            m.seg_model(torch.randn(2, 1, 4, 4))
        m.seg_model.encoder1.bias.copy_(torch.tensor([0.25, -0.5]))
        m.seg_model.ebn1.running_var.copy_(torch.tensor([0.1, 3.0], dtype=torch.float64))
        nn.init.normal_(m.cls_token, std=0.02)
    sd = m.state_dict()
    ints = [k for k, v in sd.items() if v.dtype == torch.int64]
    assert ints == ["seg_model.ebn1.num_batches_tracked", "seg_model.dbn1.num_batches_tracked"], ints
    assert all(int(sd[k]) == 3 for k in ints)

    all_dtypes = collections.OrderedDict([
        ("f32", torch.tensor([1.5, -2.25, 3.0e38, 1e-40], dtype=torch.float32)),  # 1e-40: a subnormal
        ("f64", torch.tensor([[0.1, -1e300], [2.5, 0.0]], dtype=torch.float64)),  # -1e300 -> -inf in float
        ("f16", torch.tensor([1.5, -2.25, 65504.0, 2.0 ** -24, float("inf"), -0.0], dtype=torch.float16)),
        ("bf16", torch.tensor([1.5, -2.25, 2.0 ** 100, -(2.0 ** -130)], dtype=torch.bfloat16)),
        ("i64", torch.tensor([3, -7, 2 ** 40], dtype=torch.int64)),
        ("i32", torch.tensor([-2 ** 31, 123456], dtype=torch.int32)),
        ("i16", torch.tensor([-32768, 32767], dtype=torch.int16)),
        ("i8", torch.tensor([-128, 127, 0], dtype=torch.int8)),
        ("u8", torch.tensor([0, 255, 17], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True], dtype=torch.bool)),
        ("scalar", torch.tensor(42, dtype=torch.int64)),  # rank 0, like num_batches_tracked
    ])

    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "checkpoint-3.pth")
        torch.save({"model": sd, "optimizer": {"state": {}, "param_groups": []}, "epoch": 3}, pth)
        convert(pth, os.path.join(OUT, "toy_vasomim.safetensors"))
        ddp = os.path.join(tmp, "ddp.pth")
        torch.save({"state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items())}, ddp)
        convert(ddp, os.path.join(OUT, "toy_vasomim_ddp.safetensors"))
        bare = os.path.join(tmp, "all_dtypes.pth")
        torch.save(all_dtypes, bare)
        convert(bare, os.path.join(OUT, "all_dtypes.safetensors"))
    for name in sorted(os.listdir(OUT)):
        print(f"  {name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()
