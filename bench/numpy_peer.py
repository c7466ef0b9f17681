"""The NumPy side of bench/core.mjs: times the same work and prints one JSON object."""
import json
import sys
import time

import numpy as np


def best(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    what, n = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    if what == "matmul":
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        t = best(lambda: a @ b, 3 if n >= 2048 else 7)
        print(json.dumps({"seconds": t, "numpy": np.__version__}))
    else:
        x = rng.standard_normal(n, dtype=np.float32)
        a, b = np.float32(0.5), np.float32(0.25)
        t = best(lambda: np.tanh(x * a + b) * np.exp(x), 5)
        print(json.dumps({"seconds": t, "numpy": np.__version__}))


main()
