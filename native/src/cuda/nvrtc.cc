// @file Run-time compilation through NVRTC, opened with dlopen like cuBLAS (matmul.cc): the build
// needs no NVRTC header or library, so the few declarations used live here. Sources compile to a
// cubin for the device's own architecture (PTX for the newest one NVRTC knows when it predates the
// device), load through the runtime's library API (cudaLibraryLoadData: no link to the driver
// library), and stay loaded for the life of the process, cached by a hash of their text.
#include "nvrtc.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace tessera::cuda {
namespace {

// From nvrtc.h (ABI fixed by NVIDIA since CUDA 11).
using nvrtcProgram = struct _nvrtcProgram*;
using nvrtcResult = int;

struct Nvrtc {
  nvrtcResult (*create)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*) = nullptr;
  nvrtcResult (*compile)(nvrtcProgram, int, const char* const*) = nullptr;
  nvrtcResult (*cubin_size)(nvrtcProgram, size_t*) = nullptr;
  nvrtcResult (*cubin)(nvrtcProgram, char*) = nullptr;
  nvrtcResult (*ptx_size)(nvrtcProgram, size_t*) = nullptr;
  nvrtcResult (*ptx)(nvrtcProgram, char*) = nullptr;
  nvrtcResult (*log_size)(nvrtcProgram, size_t*) = nullptr;
  nvrtcResult (*log)(nvrtcProgram, char*) = nullptr;
  nvrtcResult (*destroy)(nvrtcProgram*) = nullptr;
  const char* (*error_string)(nvrtcResult) = nullptr;
  nvrtcResult (*num_archs)(int*) = nullptr;
  nvrtcResult (*archs)(int*) = nullptr;
  bool ok = false;
};

Nvrtc& nvrtc() {
  static Nvrtc lib;
  static std::once_flag once;
  std::call_once(once, [] {
    void* so = nullptr;
    if (const char* path = std::getenv("TESSERA_NVRTC")) so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    for (const char* name : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"})
      if (!so) so = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!so) return;
    auto sym = [&](auto& fn, const char* name) { fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(so, name)); };
    sym(lib.create, "nvrtcCreateProgram");
    sym(lib.compile, "nvrtcCompileProgram");
    sym(lib.cubin_size, "nvrtcGetCUBINSize");
    sym(lib.cubin, "nvrtcGetCUBIN");
    sym(lib.ptx_size, "nvrtcGetPTXSize");
    sym(lib.ptx, "nvrtcGetPTX");
    sym(lib.log_size, "nvrtcGetProgramLogSize");
    sym(lib.log, "nvrtcGetProgramLog");
    sym(lib.destroy, "nvrtcDestroyProgram");
    sym(lib.error_string, "nvrtcGetErrorString");
    sym(lib.num_archs, "nvrtcGetNumSupportedArchs");
    sym(lib.archs, "nvrtcGetSupportedArchs");
    lib.ok = lib.create && lib.compile && lib.cubin_size && lib.cubin && lib.ptx_size && lib.ptx && lib.log_size && lib.log &&
             lib.destroy && lib.error_string;
  });
  return lib;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

struct Entry {
  std::string source;
  cudaKernel_t kernel;
};
std::mutex cache_mutex;
std::unordered_map<uint64_t, std::vector<Entry>> cache;
int compiled = 0;

// The architecture to compile for: the device's own as a cubin when NVRTC knows it, else PTX for
// the newest one NVRTC knows below it (the driver compiles that for the device).
std::string arch_option(const Nvrtc& lib, int device, bool& cubin) {
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  const int want = major * 10 + minor;
  int best = want;
  cubin = true;
  int n = 0;
  if (lib.num_archs && lib.archs && lib.num_archs(&n) == 0 && n > 0) {
    std::vector<int> archs(n);
    lib.archs(archs.data());
    if (std::find(archs.begin(), archs.end(), want) == archs.end()) {
      cubin = false;
      best = 0;
      for (int a : archs)
        if (a <= want) best = std::max(best, a);
      if (best == 0) throw std::runtime_error("NVRTC supports no architecture up to the device's sm_" + std::to_string(want));
    }
  }
  return std::string(cubin ? "--gpu-architecture=sm_" : "--gpu-architecture=compute_") + std::to_string(best);
}

// Compiles and loads one source; the caller holds cache_mutex.
cudaKernel_t build(const Nvrtc& lib, const std::string& source, const char* name, int device) {
  bool cubin = true;
  const std::string arch = arch_option(lib, device, cubin);
  // fmad stays on (nvcc's default, as elementwise.cu is built): the generated code keeps each
  // step's result opaque, so no multiply of one step fuses into an add of the next.
  const char* options[] = {arch.c_str(), "--std=c++17", "--fmad=true"};
  nvrtcProgram prog = nullptr;
  auto fail = [&](const std::string& what, nvrtcResult r) -> std::runtime_error {
    std::string log;
    size_t len = 0;
    if (prog && lib.log_size(prog, &len) == 0 && len > 1) {
      log.resize(len);
      lib.log(prog, log.data());
      log.resize(len - 1);
    }
    if (prog) lib.destroy(&prog);
    return std::runtime_error("fused kernel on device gpu: " + what + " failed (" + lib.error_string(r) + ")" +
                              (log.empty() ? "" : ":\n" + log) + "\nsource:\n" + source);
  };
  if (nvrtcResult r = lib.create(&prog, source.c_str(), "tessera_fused.cu", 0, nullptr, nullptr)) throw fail("nvrtcCreateProgram", r);
  if (nvrtcResult r = lib.compile(prog, 3, options)) throw fail("nvrtcCompileProgram", r);
  std::vector<char> image;
  size_t size = 0;
  if (nvrtcResult r = (cubin ? lib.cubin_size : lib.ptx_size)(prog, &size)) throw fail("getting the compiled code", r);
  image.resize(size);
  if (nvrtcResult r = (cubin ? lib.cubin : lib.ptx)(prog, image.data())) throw fail("getting the compiled code", r);
  lib.destroy(&prog);
  cudaLibrary_t library = nullptr;
  cudaError_t e = cudaLibraryLoadData(&library, image.data(), nullptr, nullptr, 0, nullptr, nullptr, 0);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("fused kernel on device gpu: loading the compiled code failed: ") + cudaGetErrorString(e));
  }
  cudaKernel_t kernel = nullptr;
  e = cudaLibraryGetKernel(&kernel, library, name);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("fused kernel on device gpu: no kernel ") + name + ": " + cudaGetErrorString(e));
  }
  ++compiled;
  return kernel;
}

}  // namespace

bool nvrtc_available() { return nvrtc().ok; }

cudaKernel_t nvrtc_kernel(const std::string& source, const char* name, int device) {
  Nvrtc& lib = nvrtc();
  if (!lib.ok) throw std::runtime_error("fused kernel on device gpu: NVRTC (libnvrtc.so.13 or .12) is not available");
  std::lock_guard<std::mutex> lock(cache_mutex);
  std::vector<Entry>& bucket = cache[fnv1a(source)];
  for (const Entry& e : bucket)
    if (e.source == source) return e.kernel;
  cudaKernel_t k = build(lib, source, name, device);
  bucket.push_back({source, k});
  return k;
}

int nvrtc_compiled_count() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return compiled;
}

}  // namespace tessera::cuda
