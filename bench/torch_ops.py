"""The PyTorch side of bench/ops.mjs and bench/core.mjs: times single ops and small blocks at one
thread count and prints one JSON object {"torch", "threads", "seconds": {case: seconds per call}}.

The caller sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS (OpenBLAS sizes its pool from the
environment before torch loads) and runs this once per thread count. Timing follows bench/util.mjs's
bestSeconds: a warm-up call, calls per repetition doubled until one lasts 20 ms, the fastest of seven.

Debian's torch 1.13 has no F.scaled_dot_product_attention: attention is written as
matmul / softmax / matmul, with an additive causal mask where masked (torch 1.13's own multi-head
attention computes it the same way, unfused).
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def best_seconds(fn, reps=7, min_rep_seconds=0.02):
    def rep(inner):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - t) / inner

    fn()
    inner = 1
    while rep(inner) * inner < min_rep_seconds:
        inner *= 2
    return min(rep(inner) for _ in range(reps))


def no_grad(fn):
    def run():
        with torch.no_grad():
            fn()
    return run


def backward(fn, inputs):
    """fn's forward and the gradients of all `inputs` given a random output cotangent, as mx.vjp."""
    inputs = [t.detach().requires_grad_(True) for t in inputs]
    cot = torch.randn_like(fn(*inputs))
    return lambda: torch.autograd.grad(fn(*inputs), inputs, cot)


def conv2d():
    x, w = torch.randn(32, 64, 32, 32), torch.randn(64, 64, 3, 3)  # NCHW, torch's native layout
    f = lambda x, w: F.conv2d(x, w, padding=1)
    return {"conv2d": no_grad(lambda: f(x, w)), "conv2d-bwd": backward(f, [x, w])}


def layer_norm():
    x, w, b = torch.randn(4096, 4096), torch.randn(4096), torch.randn(4096)
    f = lambda x, w, b: F.layer_norm(x, (4096,), w, b, 1e-5)
    return {"layernorm": no_grad(lambda: f(x, w, b)), "layernorm-bwd": backward(f, [x, w, b])}


def softmax():
    x = torch.randn(4096, 4096)
    return {"softmax": no_grad(lambda: torch.softmax(x, dim=-1))}


def attention(q, k, v, mask=None):
    scores = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores = scores + mask
    return torch.softmax(scores, dim=-1) @ v


def causal_mask(n):
    future = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    return torch.zeros(n, n).masked_fill(future, torch.finfo(torch.float32).min)


def sdpa():
    q, k, v = (torch.randn(16, 4, 128, 64) for _ in range(3))
    mask = causal_mask(128)
    cases = {}
    for name, m in (("sdpa", None), ("sdpa-causal", mask)):
        f = lambda q, k, v, m=m: attention(q, k, v, m)
        cases[name] = no_grad(lambda f=f: f(q, k, v))
        cases[name + "-bwd"] = backward(f, [q, k, v])
    return cases


def attention_block():
    """bench/core.mjs's block: 4-head self-attention, d 256, projections without bias (as tessera's
    nn.MultiHeadAttention), no mask; forward, the loss sum(out) and the gradients of all weights."""
    b, l, d, h = 16, 128, 256, 4
    x = torch.randn(b, l, d)
    weights = [(torch.randn(d, d) / math.sqrt(d)).requires_grad_(True) for _ in range(4)]

    def step():
        wq, wk, wv, wo = weights
        split = lambda t: t.reshape(b, l, h, d // h).transpose(1, 2)
        o = attention(split(x @ wq.T), split(x @ wk.T), split(x @ wv.T))
        out = o.transpose(1, 2).reshape(b, l, d) @ wo.T
        return torch.autograd.grad(out.sum(), weights)

    return {"attn-block": step}


def full_sum():
    x = torch.randn(16 * 1024 * 1024)
    return {"sum": no_grad(lambda: x.sum())}


def matmul_bf16():
    """bfloat16 products as bench/core.mjs times them (oneDNN's AMX or AVX-512 BF16 kernels where the
    CPU has them)."""
    cases = {}
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n).bfloat16(), torch.randn(n, n).bfloat16()
        cases[f"matmul-bf16-{n}"] = no_grad(lambda a=a, b=b: a @ b)
    return cases


def tiny_add():
    a, b = torch.randn(4), torch.randn(4)
    return {"tiny-add": no_grad(lambda: a + b)}


GROUPS = {"conv2d": conv2d, "layernorm": layer_norm, "softmax": softmax, "sdpa": sdpa,
          "attn-block": attention_block, "sum": full_sum, "tiny-add": tiny_add,
          "matmul-bf16": matmul_bf16}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--groups", default=",".join(GROUPS), help="comma-separated: " + ", ".join(GROUPS))
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    seconds = {}
    for g in a.groups.split(","):
        if g not in GROUPS:
            raise SystemExit(f"torch_ops.py: unknown group {g}; expected one of {', '.join(GROUPS)}")
        for name, fn in GROUPS[g]().items():
            seconds[name] = best_seconds(fn)
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "seconds": seconds}))


if __name__ == "__main__":
    main()
