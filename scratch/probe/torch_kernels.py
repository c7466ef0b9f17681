import torch
from torch.profiler import profile, ProfilerActivity
for n in (1024, 4096):
    a = torch.randn(n, n, device="cuda"); b = torch.randn(n, n, device="cuda")
    for name, dt, tf32 in (("f32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        x, y = a.to(dt), b.to(dt)
        for _ in range(3): torch.mm(x, y)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as p:
            for _ in range(5): torch.mm(x, y)
            torch.cuda.synchronize()
        ev = [e for e in p.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        names = sorted({e.name[:110] for e in ev})
        us = sum(e.device_time for e in ev) / 5 if ev else 0
        print(f"n={n} {name}: {us:.1f} us/mm  {2*n**3/us/1e6:.1f} TFLOP/s  kernels: {names}")
print("blas backend", torch.backends.cuda.preferred_blas_library())
print("bf16 reduced", torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction)
