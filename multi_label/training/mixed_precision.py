"""precision="auto": the compute dtype this machine runs fastest without losing accuracy, chosen once per run.

- a GPU of compute capability 8.0 or more (Ampere, Hopper and later): mixed_bfloat16, which needs
  no loss scaling;
- a GPU of compute capability 7.x (Volta, Turing): mixed_float16, the tensor cores' dtype, with
  Keras's automatic loss scaling;
- a CPU that runs bfloat16 natively (Intel AMX or AVX512_BF16, seen in /proc/cpuinfo): mixed_bfloat16,
  2.4x float32 for a ResNet-18 on a 2-core Xeon with AMX (BENCHMARKS.md);
- anything else (older GPUs, CPUs without bfloat16 units, where it is emulated and slower): float32.

Variables, logits and losses stay float32 in the mixed policies. The choice is saved in the run's
config.json as the `precision` it trained with, so a resumed run keeps it even on another machine.
"""

import tensorflow as tf

from utils.cpu import cpu_flags

CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # the /proc/cpuinfo flags of native bfloat16 arithmetic


def gpu_capabilities():
    """(major, minor) compute capability of each visible GPU, as TensorFlow reports it."""
    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            found.append(tuple(capability))
    return found


def choose_precision(capabilities, flags):
    """Returns (policy name, the reason in words) for a machine's GPUs and CPU flags.

    Args:
        capabilities: list of (int, int). The GPUs' compute capabilities (`gpu_capabilities`); with
            several, the oldest decides, since every replica runs the same policy.
        flags: set[str]. The CPU's flags (`cpu_flags`), read only when there is no GPU.
    """
    if capabilities:
        oldest = min(capabilities)
        name = f"GPU compute capability {oldest[0]}.{oldest[1]}"
        if oldest >= (8, 0):
            return "mixed_bfloat16", f"{name} runs bfloat16 natively"
        if oldest >= (7, 0):
            return "mixed_float16", f"{name} has float16 tensor cores (bfloat16 needs 8.0)"
        return "float32", f"{name} has no tensor cores"
    native = [flag for flag in CPU_BF16_FLAGS if flag in flags]
    if native:
        return "mixed_bfloat16", f"no GPU; the CPU runs bfloat16 natively ({', '.join(native)})"
    return "float32", "no GPU, and the CPU has no native bfloat16 (no amx_bf16 or avx512_bf16 flag)"


def resolve_precision(requested, saved=None):
    """The precision a training run uses, and the line that says why.

    Args:
        requested: str. The `precision` setting: a policy name, or "auto".
        saved: str or None. The precision the run folder's config.json holds (a run being resumed).

    Returns:
        (str, str or None). The policy name; a line for the console when "auto" chose it, else None.
    """
    if requested != "auto":
        return requested, None
    if saved is not None and saved != "auto":
        return saved, f"precision=auto: {saved}, as the run being resumed trained with"
    policy, reason = choose_precision(gpu_capabilities(), cpu_flags())
    return policy, f"precision=auto: {policy} ({reason})"
