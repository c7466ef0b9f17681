// @file Kernels compiled at run time with NVRTC (nvrtc.cc): the library is opened with dlopen the
// first time it is asked for, so the addon builds and loads where NVRTC is absent (then the gpu
// reports no fused kernels and the fusion pass leaves gpu nodes alone).
#pragma once
#include <cuda_runtime_api.h>

#include <string>

namespace tessera::cuda {

// Whether NVRTC could be opened (libnvrtc.so.13, else .12; TESSERA_NVRTC names another path).
// Opens it on the first call; never throws.
bool nvrtc_available();

// The kernel `name` (declared extern "C") of `source`, compiled for `device`'s architecture and
// loaded once: later calls with the same source return the cached kernel (keyed by a hash of the
// source, the whole text compared on a hit). Throws with NVRTC's log if the source does not compile.
cudaKernel_t nvrtc_kernel(const std::string& source, const char* name, int device);

// How many distinct sources were compiled so far in this process (for tests of the cache).
int nvrtc_compiled_count();

}  // namespace tessera::cuda
