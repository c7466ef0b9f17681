"""PyTorch's figures for bench/gpu.mjs, measured in the same call: float32, TF32 and bfloat16
matmul TFLOP/s through cuBLAS (n x n x n, CUDA events around 20 products), and the bandwidth of a
device-to-device copy of 64M floats (read + write). Prints one JSON object.
Run: python3 bench/gpu_peers.py (PyTorch with CUDA on PATH as python3)."""
import json

import torch


def timed(fn, reps):
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / reps


def main():
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name()}
    for n in (1024, 4096):
        a = torch.rand(n, n, device="cuda") * 2 - 1
        b = torch.rand(n, n, device="cuda") * 2 - 1
        for name, dtype, tf32 in (("float32", torch.float32, False), ("tf32", torch.float32, True), ("bfloat16", torch.bfloat16, False)):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            x, y = a.to(dtype), b.to(dtype)
            out[f"matmul_{name}_{n}"] = 2 * n**3 / timed(lambda: torch.mm(x, y), 20) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    x = torch.empty(64 * 2**20, device="cuda")
    y = torch.empty_like(x)
    out["copy_tbs"] = 8 * x.numel() / timed(lambda: y.copy_(x), 50) / 1e12
    print(json.dumps(out))


if __name__ == "__main__":
    main()
