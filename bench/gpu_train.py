"""The peers of bench/train.mjs on a GPU: PyTorch eager, torch.compile and jax.jit, each timing the
same training steps as tessera's (--device gpu): the MLP 784-512-512-10 with Adam at batch 256, and
the character Transformer of examples/lm (2 pre-norm layers, width 128, 4 heads, MLP 512, learned
positions, causal mask) with AdamW at 16 x 128. Prints one JSON line per (config, framework).

Run on a machine with a CUDA GPU and PyTorch and/or JAX installed:
  python3 bench/gpu_train.py [--seconds S] [--configs mlp-adam,transformer] [--frameworks eager,compile,jax,jax-f32]
A framework that is not installed, or fails, prints a JSON line with an "error" instead.
"""
import argparse
import functools
import json
import math
import time

VOCAB = 59


def timed(step, seconds):
    """Steps per second of step() (it returns something to block on), the best of three windows."""
    for _ in range(5):
        step()
    best = 0.0
    for _ in range(3):
        t, k = time.perf_counter(), 0
        while k < 5 or time.perf_counter() - t < seconds / 3:
            out = step()
            k += 1
        _ = float(out)  # waits for the device
        best = max(best, k / (time.perf_counter() - t))
    return best


def torch_step(config, compiled):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    dev = torch.device("cuda")
    torch.manual_seed(0)
    if config == "mlp-adam":
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)).to(dev)
        x, y = torch.randn(256, 784, device=dev), torch.randint(0, 10, (256,), device=dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=compiled)
        loss_fn = lambda: F.cross_entropy(model(x), y)
    else:
        layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, activation="relu", batch_first=True, norm_first=True)

        class LM(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb, self.pos = nn.Embedding(VOCAB, 128), nn.Embedding(128, 128)
                self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
                self.ln, self.head = nn.LayerNorm(128), nn.Linear(128, VOCAB)

            def forward(self, t):
                h = self.emb(t) + self.pos(torch.arange(t.shape[1], device=t.device))
                mask = nn.Transformer.generate_square_subsequent_mask(t.shape[1], device=t.device)
                return self.head(self.ln(self.enc(h, mask=mask, is_causal=True)))

        model = LM().to(dev)
        x, y = torch.randint(0, VOCAB, (16, 128), device=dev), torch.randint(0, VOCAB, (16, 128), device=dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, capturable=compiled)
        loss_fn = lambda: F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.detach()

    if compiled:
        step = torch.compile(step, mode="reduce-overhead")
    return step, torch.__version__


def jax_step(config, precision):
    import jax
    import jax.numpy as jnp

    if jax.default_backend() != "gpu":  # a jax without its CUDA plugin runs on the host: no peer
        raise RuntimeError(f"jax {jax.__version__} runs on {jax.default_backend()} here, not on the gpu")

    key = jax.random.PRNGKey(0)
    keys = iter(jax.random.split(key, 64))

    def linear(i, o):
        bound = 1 / math.sqrt(i)
        return {"w": jax.random.uniform(next(keys), (i, o), minval=-bound, maxval=bound),
                "b": jax.random.uniform(next(keys), (o,), minval=-bound, maxval=bound)}

    def ln(d):
        return {"g": jnp.ones(d), "b": jnp.zeros(d)}

    def layer_norm(p, h):
        m = h.mean(-1, keepdims=True)
        v = ((h - m) ** 2).mean(-1, keepdims=True)
        return (h - m) / jnp.sqrt(v + 1e-5) * p["g"] + p["b"]

    if config == "mlp-adam":
        params = [linear(784, 512), linear(512, 512), linear(512, 10)]
        x = jax.random.normal(next(keys), (256, 784))
        y = jax.random.randint(next(keys), (256,), 0, 10)

        def forward(p, x):
            for l in p[:-1]:
                x = jax.nn.relu(x @ l["w"] + l["b"])
            return x @ p[-1]["w"] + p[-1]["b"]
        lr, wd = 1e-3, 0.0
    else:
        def block():
            return {"q": linear(128, 128)["w"], "k": linear(128, 128)["w"], "v": linear(128, 128)["w"], "o": linear(128, 128)["w"],
                    "ln1": ln(128), "ln2": ln(128), "l1": linear(128, 512), "l2": linear(512, 128)}
        params = {"emb": jax.random.normal(next(keys), (VOCAB, 128)), "pos": jax.random.normal(next(keys), (128, 128)),
                  "blocks": [block(), block()], "ln": ln(128), "head": linear(128, VOCAB)}
        x = jax.random.randint(next(keys), (16, 128), 0, VOCAB)
        y = jax.random.randint(next(keys), (16, 128), 0, VOCAB)
        mask = jnp.where(jnp.triu(jnp.ones((128, 128), bool), 1), -jnp.inf, 0.0)

        def forward(p, t):
            h = p["emb"][t] + p["pos"][jnp.arange(t.shape[1])]
            b, l, d = h.shape
            for blk in p["blocks"]:
                a = layer_norm(blk["ln1"], h)
                split = lambda z: z.reshape(b, l, 4, d // 4).transpose(0, 2, 1, 3)
                q, k, v = split(a @ blk["q"]), split(a @ blk["k"]), split(a @ blk["v"])
                s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // 4) + mask
                o = (jax.nn.softmax(s, -1) @ v).transpose(0, 2, 1, 3).reshape(b, l, d)
                h = h + o @ blk["o"]
                m = layer_norm(blk["ln2"], h)
                h = h + jax.nn.relu(m @ blk["l1"]["w"] + blk["l1"]["b"]) @ blk["l2"]["w"] + blk["l2"]["b"]
            return layer_norm(p["ln"], h) @ p["head"]["w"] + p["head"]["b"]
        lr, wd = 1e-3, 0.01

    def loss_fn(p, x, y):
        logits = forward(p, x).reshape(-1, VOCAB if config != "mlp-adam" else 10)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y.reshape(-1, 1), 1))

    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)

    # The step count lives on the device with the moments (as optax keeps it): a host scalar passed
    # each call would cost jax a transfer per step that tessera's bound scalars do not.
    @functools.partial(jax.jit, donate_argnums=(0, 1, 2, 3))  # parameters, moments and count in place
    def update(p, m, v, t, x, y):
        t = t + 1
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        b1, b2, eps = 0.9, 0.999, 1e-8
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        p = jax.tree_util.tree_map(lambda p, m, v: p * (1 - lr * wd) - lr / c1 * m / (jnp.sqrt(v / c2) + eps), p, m, v)
        return p, m, v, t, loss

    state = {"p": params, "m": m, "v": v, "t": jnp.zeros((), jnp.float32)}
    # The precision applies to what is traced from here on (set once, not entered each step).
    jax.config.update("jax_default_matmul_precision", precision)

    def step():
        state["p"], state["m"], state["v"], state["t"], loss = update(state["p"], state["m"], state["v"], state["t"], x, y)
        return loss
    return step, f"{jax.__version__} ({jax.devices()[0].device_kind}, matmul precision {precision or 'default'})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--configs", default="mlp-adam,transformer")
    ap.add_argument("--frameworks", default="eager,compile,jax,jax-f32")
    a = ap.parse_args()
    for config in a.configs.split(","):
        for fw in a.frameworks.split(","):
            name = {"eager": "torch eager", "compile": "torch.compile (reduce-overhead)", "jax": "jax.jit",
                    "jax-f32": "jax.jit, float32 matmuls"}[fw]
            try:
                # jax's default float32 matmul on a recent gpu is TF32 ("tensorfloat32"); jax-f32 asks
                # for full float32, what torch (allow_tf32 off) and tessera (by default) compute.
                if fw.startswith("jax"):
                    step, version = jax_step(config, "float32" if fw == "jax-f32" else None)
                else:
                    step, version = torch_step(config, fw == "compile")
                sps = timed(step, a.seconds)
                print(json.dumps({"config": config, "framework": name, "version": version, "stepsPerSec": sps}), flush=True)
            except Exception as e:  # a missing or failing framework is reported, not fatal
                print(json.dumps({"config": config, "framework": name, "error": f"{type(e).__name__}: {e}"[:300]}), flush=True)


if __name__ == "__main__":
    main()
