cd "$(dirname "$0")/../.."
echo "== nsys/ncu: $(which nsys ncu)"
nvcc -O2 -o /tmp/gp .carry/probe/gemm_probe.cu -lcublas -lcublasLt 2>&1 | tail -5 && timeout 120 /tmp/gp
echo "== torch"; timeout 60 python3 .carry/probe/torch_kernels.py 2>&1 | grep -v Warning
echo "== host"; timeout 90 node .carry/probe/host.mjs
echo "== bufs"; timeout 60 node .carry/probe/bufs.mjs transformer gpu; timeout 60 node .carry/probe/bufs.mjs mlp gpu
