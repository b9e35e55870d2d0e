#!/usr/bin/python3
"""Anatomy-guided masking: vasomim (masking_benchmark) against the released PyTorch code, side by side.

Workload (issue 4): N = 256 guidance maps of 224 x 224, p = 16 (L = 196), mask ratio 0.5, beta 0.5;
timed: patch weights + sampling + index outputs (ids_keep, mask, ids_restore). The PyTorch side is a
restatement of `guided_masking` of the released VasoMIM code (models_vmae.py of Dxhuang-CASIA/XA-SSL):
patchify + sum for the weights, then per sample torch.multinomial(replacement=False) for the guided
patches, argsort of uniform noise for the rest, randperm for all-zero rows, argsort for ids_restore.
The token gather x[:, ids_keep] is left out on both sides. Both sides build the same synthetic maps.

Usage: benchmarks/masking_vs_torch.py [--binary build/benchmarks/masking_benchmark] [--reps 15]
Needs Debian's python3-torch (run with /usr/bin/python3). Prints medians and the ratio.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch

N, SIZE, PATCH, MASK_RATIO, BETA = 256, 224, 16, 0.5, 0.5


def synthetic_guidance(n=N, size=SIZE):
    """G = 0.5 B + 0.5 M around a sine-shaped vessel; the same maps as masking_benchmark.cpp."""
    x = torch.arange(size, dtype=torch.float64)
    k = torch.arange(n, dtype=torch.float64)
    freq = (1 + torch.arange(n) % 3).to(torch.float64)
    c = 112.0 + 70.0 * torch.sin(2 * math.pi * x[None, :] / size * freq[:, None] + 0.1 * k[:, None])  # (n, x)
    y = torch.arange(size, dtype=torch.float64)
    d = (y[None, :, None] - c[:, None, :]).abs()  # (n, y, x)
    g = 0.5 * (d < 3.0).to(torch.float64) + 0.5 * torch.exp(-d * d / 32.0)
    return g.to(torch.float32).unsqueeze(1)  # (n, 1, H, W), as the released forward passes it


def patch_sums(guidance, p):
    """Released patchify_filter + sum: (N, 1, H, W) -> (N, L) weights."""
    n, _, h, w = guidance.shape
    gh, gw = h // p, w // p
    x = guidance.reshape(n, 1, gh, p, gw, p)
    x = torch.einsum('nchpwq->nhwpqc', x).reshape(n, gh * gw, p * p)
    return x.sum(dim=2)


def released_guided_masking(guidance, p, mask_ratio, beta):
    """Restatement of the released guided_masking (index outputs only)."""
    weights = patch_sums(guidance, p)
    n, L = weights.shape
    len_keep = int(L * (1 - mask_ratio))
    num_mask = L - len_keep
    target = int(num_mask * beta)
    total = weights.sum(dim=1)
    probs = weights / (total.unsqueeze(-1) + 1e-6)
    ids_shuffle = torch.zeros((n, L), dtype=torch.long)
    arange = torch.arange(L)
    for i in (total != 0).nonzero(as_tuple=True)[0]:
        k = min(target, int((probs[i] > 0).sum().item()))
        guided = torch.multinomial(probs[i], num_samples=k, replacement=False) if k > 0 else \
            torch.zeros(0, dtype=torch.long)
        chosen = torch.zeros(L, dtype=torch.bool)
        chosen[guided] = True
        rest = arange[~chosen]
        extra = num_mask - guided.numel()
        uniform = rest[torch.argsort(torch.rand(rest.shape[0]))][:extra] if extra > 0 else \
            torch.zeros(0, dtype=torch.long)
        masked = torch.cat([guided, uniform])
        keep = torch.ones(L, dtype=torch.bool)
        keep[masked] = False
        ids_shuffle[i] = torch.cat([arange[keep], masked])
    for i in (total == 0).nonzero(as_tuple=True)[0]:
        ids_shuffle[i] = torch.randperm(L)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    mask = torch.ones((n, L))
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return ids_keep, mask, ids_restore


def mae_random_masking(n, L, mask_ratio):
    """MAE's random_masking (index outputs only)."""
    len_keep = int(L * (1 - mask_ratio))
    ids_shuffle = torch.argsort(torch.rand(n, L), dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones((n, L))
    mask[:, :len_keep] = 0
    return ids_shuffle[:, :len_keep], torch.gather(mask, dim=1, index=ids_restore), ids_restore


def median_ms(fn, reps, warmup=2):
    """Medians of (wall-clock ms, process CPU ms: all threads) over `reps` calls."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def cpp_medians(binary, reps, threads):
    out = subprocess.run([binary, f'--benchmark_repetitions={reps}', '--benchmark_report_aggregates_only=true',
                          '--benchmark_format=json'], check=True, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS=str(threads))).stdout
    res = {}
    for b in json.loads(out)['benchmarks']:
        if b.get('aggregate_name') == 'median':
            scale = {'ns': 1e-6, 'us': 1e-3, 'ms': 1.0, 's': 1e3}[b['time_unit']]
            res[b['run_name']] = (b['real_time'] * scale, b['cpu_time'] * scale)
    return res


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--binary', default=os.path.join(here, '..', 'build', 'benchmarks', 'masking_benchmark'))
    ap.add_argument('--reps', type=int, default=15)
    ap.add_argument('--threads', type=int, default=os.cpu_count(),
                    help="threads of both sides: torch.set_num_threads and the library's OMP_NUM_THREADS")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)  # Debian's torch starts with 1 thread here
    torch.manual_seed(0)
    print(f'vasomim {args.threads} threads (OMP_NUM_THREADS), torch {torch.__version__} '
          f'{torch.get_num_threads()} threads; N={N} maps {SIZE}x{SIZE}, p={PATCH}, '
          f'mask ratio {MASK_RATIO}, beta {BETA}; medians of {args.reps} runs')

    cpp = cpp_medians(args.binary, args.reps, args.threads)

    g = synthetic_guidance()
    L = (SIZE // PATCH) ** 2
    ids_keep, mask, ids_restore = released_guided_masking(g, PATCH, MASK_RATIO, BETA)
    assert ids_keep.shape == (N, L // 2) and int(mask.sum()) == N * (L - L // 2)
    torch_guided = median_ms(lambda: released_guided_masking(g, PATCH, MASK_RATIO, BETA), args.reps)
    torch_weights = median_ms(lambda: patch_sums(g, PATCH), args.reps)
    w = patch_sums(g, PATCH).unsqueeze(1)  # the sampling part alone: weights as a 1 x 1 "map" per patch
    torch_sampling = median_ms(lambda: released_guided_masking(w.reshape(N, 1, 14, 14), 1, MASK_RATIO, BETA), args.reps)
    torch_random = median_ms(lambda: mae_random_masking(N, L, MASK_RATIO), args.reps)

    torch.set_num_threads(1)  # for reference: the released code on one thread
    torch_guided_1 = median_ms(lambda: released_guided_masking(g, PATCH, MASK_RATIO, BETA), args.reps)
    torch.set_num_threads(args.threads)

    rows = [
        ('weights + sampling + index outputs', 'BM_guided_masking', torch_guided),
        ('  patch weights only', 'BM_patch_weights', torch_weights),
        ('  sampling + outputs from weights', 'BM_guided_from_weights', torch_sampling),
        ('random masking (MAE)', 'BM_random_masking', torch_random),
    ]
    backends = ('backend::cpu', 'backend::thrust_omp', 'backend::thrust_cpp')
    for kind, col in (('wall-clock', 0), ('process CPU time (all threads)', 1)):
        print(f'\nmedian {kind}, ms (ratio = torch / vasomim)')
        print(f'{"":36s} {"torch":>9s} | ' + ' | '.join(f'{b.split("::")[1]:>18s}' for b in backends))
        for label, bench, t in rows:
            cells = []
            for backend in backends:
                c = cpp.get(f'{bench}<{backend}>/process_time/real_time')
                cells.append(f'{c[col]:8.2f} {t[col] / c[col]:7.1f}x' if c else f'{"n/a":>18s}')
            print(f'{label:36s} {t[col]:9.2f} | ' + ' | '.join(cells))
    floor = cpp.get('BM_guidance_read_floor/process_time/real_time')
    if floor:
        print(f'\nfloor: one streaming read of the {N} guidance maps ({N * SIZE * SIZE * 4 / 1e6:.1f} MB) takes '
              f'{floor[0]:.2f} ms wall, {floor[1]:.2f} ms CPU: no implementation that reads them can beat '
              f'{torch_guided[0] / floor[0]:.0f}x (wall) / {torch_guided[1] / floor[1]:.0f}x (CPU) against torch here')
    c = cpp.get('BM_guided_masking<backend::cpu>/process_time/real_time')
    print(f'\ntorch on 1 thread, weights + sampling + index outputs: {torch_guided_1[0]:.2f} ms wall, '
          f'{torch_guided_1[1]:.2f} ms CPU' + (f' ({torch_guided_1[0] / c[0]:.1f}x / {torch_guided_1[1] / c[1]:.1f}x '
                                                  'the cpu backend)' if c else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
