"""The CPU's instruction sets, as the kernel reports them: what decides which kernels run and how fast.

TensorFlow's oneDNN and PyTorch pick their kernels by these flags, so a speed figure means little
without them (an AVX2-only CPU and one with AVX-512 or AMX differ several-fold on the same code).
"""

import os
import platform

# The flags that name the vector and matrix instruction sets the deep-learning kernels use.
ISA_PREFIXES = ("avx2", "fma", "avx512", "avx_vnni", "amx")


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo, e.g. macOS)."""
    return set(_first_field("flags", path).split())


def cpu_model(path="/proc/cpuinfo"):
    """The CPU's model name as the kernel reports it ("AMD EPYC ..."), or platform.machine() where it is not known."""
    return _first_field("model name", path) or platform.machine()


def _first_field(name, path):
    """The value of the first `name : value` line of /proc/cpuinfo ("" where there is none)."""
    if not os.path.isfile(path):
        return ""
    with open(path) as f:
        for line in f:
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    return ""


def isa_summary(flags=None):
    """One line naming the CPU's vector and matrix instruction sets, e.g. "avx2 fma (no AVX-512, no AMX)".

    Args:
        flags: set[str] or None. The CPU's flags; None: this machine's (`cpu_flags`).
    """
    flags = cpu_flags() if flags is None else flags
    named = sorted(flag for flag in flags if flag.startswith(ISA_PREFIXES))
    missing = [name for name, prefix in (("AVX-512", "avx512"), ("AMX", "amx"))
               if not any(flag.startswith(prefix) for flag in flags)]
    text = " ".join(named) or "no AVX2, AVX-512 or AMX flags"
    return f"{text} (no {', no '.join(missing)})" if missing else text
