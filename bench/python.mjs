// Finds a Python that imports a given module for the benchmarks' peers (NumPy for bench/core.mjs,
// PyTorch for bench/train.mjs, bench/ops.mjs and bench/core.mjs), installing the Debian package that
// provides it if none does; aptInstall installs other Debian packages the peers need.
import { execFileSync } from "node:child_process";

/** Whether `python -c "import <module>"` succeeds. */
function imports(python, module) {
  try {
    execFileSync(python, ["-c", `import ${module}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * The first of `candidates` that imports `module`; if none does, installs `debianPackage` with
 * apt-get (through sudo unless root) and tries again. Throws when it still finds none.
 * @example
 * const python = findPython("numpy", "python3-numpy");
 * const torchPython = findPython("torch", "python3-torch", { candidates: ["/usr/bin/python3"] });
 */
export function findPython(module, debianPackage, { candidates = ["python3", "/usr/bin/python3"], log = console.log } = {}) {
  for (const py of candidates) if (imports(py, module)) return py;
  log(`${module} not found: installing Debian's ${debianPackage} ...`);
  aptInstall(debianPackage);
  for (const py of candidates) if (imports(py, module)) return py;
  throw new Error(`bench: could not find or install ${module} (Debian's ${debianPackage}) for ${candidates.join(" or ")}`);
}

// Debian's torch calls the system BLAS, which python3-torch alone leaves at the reference
// implementation (libblas3, about ten times slower here); Debian's OpenBLAS takes its place.
const TORCH_BLAS = "import torch, re; torch.ones(64, 64) @ torch.ones(64, 64); print(int(bool(re.search('openblas|mkl|blis', open('/proc/self/maps').read()))))";

/**
 * The system python3 with Debian's python3-torch, installing it if missing, and Debian's OpenBLAS
 * when torch would otherwise run on the reference BLAS.
 * @example
 * const python = findTorchPython();
 */
export function findTorchPython({ log = console.log } = {}) {
  const python = findPython("torch", "python3-torch", { candidates: ["/usr/bin/python3"], log });
  if (execFileSync(python, ["-c", TORCH_BLAS]).toString().trim() !== "1") {
    log("torch runs on the reference BLAS: installing Debian's libopenblas0-pthread ...");
    aptInstall("libopenblas0-pthread");
  }
  return python;
}

/**
 * Installs Debian packages with apt-get (through sudo unless root), after an `apt-get update`.
 * @example
 * aptInstall("libopenblas0-pthread");
 */
export function aptInstall(...packages) {
  const sudo = process.getuid && process.getuid() === 0 ? [] : ["sudo"];
  const run = (args) => execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: "inherit" });
  run(["apt-get", "update"]);
  run(["apt-get", "install", "-y", ...packages]);
}
