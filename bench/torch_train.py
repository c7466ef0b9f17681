"""The PyTorch side of bench/train.mjs: times one training configuration in this process and
prints one JSON object (steps per second and this process's peak RSS).

The models mirror tessera's: the MLP 784-512-512-10 (ReLU, biases, mean cross-entropy), and the
character Transformer of examples/lm (token and learned position embeddings, two pre-norm blocks of
4-head causal self-attention without projection biases and a 128-512-128 ReLU MLP with biases, a
final LayerNorm, a linear head). Attention is written out (scores, additive mask, softmax, values)
since Debian's torch 1.13 has no scaled_dot_product_attention.
"""
import argparse
import json
import math
import os
import resource
import sys
import time


def _threads_from_argv():
    """--threads, read before torch loads: OpenBLAS sizes its own pool from the environment."""
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# Debian's torch calls the system BLAS (OpenBLAS when libopenblas0 is installed), whose thread pool
# ignores torch.set_num_threads; without this, OpenMP and OpenBLAS threads oversubscribe the cores.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = _threads_from_argv()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class MLP(nn.Module):
    def __init__(self, dims=(784, 512, 512, 10)):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class Block(nn.Module):
    def __init__(self, dims, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dims, dims, bias=False) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(dims), nn.LayerNorm(dims)
        self.linear1, self.linear2 = nn.Linear(dims, 4 * dims), nn.Linear(4 * dims, dims)

    def attention(self, x, mask):
        b, l, d = x.shape
        split = lambda t: t.reshape(b, l, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-1, -2) * (1 / math.sqrt(d // self.heads)) + mask
        o = torch.softmax(scores, dim=-1) @ v
        return self.o(o.transpose(1, 2).reshape(b, l, d))

    def forward(self, x, mask):
        x = x + self.attention(self.ln1(x), mask)
        return x + self.linear2(F.relu(self.linear1(self.ln2(x))))


class CharTransformer(nn.Module):
    def __init__(self, vocab, context=128, dims=128, heads=4, layers=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dims)
        self.positions = nn.Embedding(context, dims)
        self.blocks = nn.ModuleList(Block(dims, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(dims)
        self.head = nn.Linear(dims, vocab)

    def forward(self, x):
        l = x.shape[1]
        h = self.embedding(x) + self.positions(torch.arange(l))
        future = torch.triu(torch.ones(l, l, dtype=torch.bool), diagonal=1)
        mask = torch.zeros(l, l).masked_fill(future, torch.finfo(torch.float32).min)
        for block in self.blocks:
            h = block(h, mask)
        return self.head(self.ln(h))


def setup(config, vocab):
    """The model, the optimizer and a step function returning the loss as a float."""
    if config in ("mlp-sgd", "mlp-adam"):
        model = MLP()
        x, y = torch.randn(256, 784), torch.randint(0, 10, (256,))
        if config == "mlp-sgd":
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = lambda: F.cross_entropy(model(x), y)
    elif config == "transformer":
        model = CharTransformer(vocab)
        x, y = torch.randint(0, vocab, (16, 128)), torch.randint(0, vocab, (16, 128))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        loss_fn = lambda: F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
    else:
        raise SystemExit(f"torch_train.py: unknown config {config}")

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds, in three windows; the fastest is reported")
    p.add_argument("--steps", type=int, default=0, help="run exactly this many steps (no warm-up) instead of timing")
    p.add_argument("--vocab", type=int, default=59)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    step = setup(a.config, a.vocab)
    if a.steps:
        t, n = time.perf_counter(), a.steps
        for _ in range(n):
            step()
        secs = time.perf_counter() - t
    else:
        for _ in range(3):  # warm-up: allocator, thread pool
            step()
        best = 0.0
        for _ in range(3):  # the best of three windows, as bench/train.mjs does for tessera
            t, k = time.perf_counter(), 0
            while k < 3 or time.perf_counter() - t < a.seconds / 3:
                step()
                k += 1
            s = time.perf_counter() - t
            if k / s > best:
                best, n, secs = k / s, k, s
    with open("/proc/self/maps") as f:  # which BLAS the process loaded, for the report
        blas = sorted({os.path.basename(l.split()[-1]) for l in f if "blas" in l or "mkl" in l})
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"steps": n, "seconds": secs, "stepsPerSec": n / secs, "peakRssMB": rss_kb / 1024, "threads": a.threads, "torch": torch.__version__, "blas": blas}))


if __name__ == "__main__":
    main()
