"""What the console shows: a quiet TensorFlow start, one line naming the GPUs, whole lines at once in a log.

TensorFlow 2.21 prints some notes before it reads TF_CPP_MIN_LOG_LEVEL (the oneDNN note, "Could
not find cuda drivers", absl's "All log messages before absl::InitializeLog()" banner), and on a
machine without a GPU it logs `failed call to cuInit` as an error although nothing is wrong.
`start_tensorflow` imports TensorFlow with the standard error stream held in a file, and writes
back every line except those notes: the INFO lines that TF_CPP_MIN_LOG_LEVEL asks to hide, and
the CUDA probe lines where no NVIDIA GPU exists (where one does, they may be real problems and
stay). CUDA_VISIBLE_DEVICES=-1 would not help: TensorFlow 2.21 still logs the cuInit failure.
Python warnings and TensorFlow's errors still show (TF_CPP_MIN_LOG_LEVEL=1 adds its C++
warnings). MULTI_LABEL_VERBOSE=1 shows everything, as TensorFlow prints it.

oneDNN: TensorFlow 2.21 turns its oneDNN kernels on by itself only on x86 CPUs with AVX512_VNNI,
AVX512_BF16, AVX_VNNI or AMX; on the AVX2 CPUs most laptops and cloud machines have it falls back
to Eigen's kernels. `prefer_onednn` asks for oneDNN on every x86 CPU unless the user has set
TF_ENABLE_ONEDNN_OPTS: on a 2-core AMD EPYC with AVX2 and no AVX-512 the demo's training step
runs 2.7 times as fast (`benchmarks/bench_train.py`, BENCHMARKS.md "The demo on 2 AVX2 cores"). Only its
start-up note is hidden.
"""

import contextlib
import glob
import os
import platform
import re
import shutil
import sys
import tempfile

VERBOSE_VARIABLE = "MULTI_LABEL_VERBOSE"  # 1: TensorFlow's start-up lines as TensorFlow prints them
QUIET_TF_LEVEL = "2"  # TF_CPP_MIN_LOG_LEVEL unless the user sets it: 2 hides INFO and WARNING, keeps errors
ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# An absl/TensorFlow log line: severity letter, date, time, thread, source file:line]
LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([\w.-]+):\d+\] ")
SEVERITIES = "IWEF"  # the order of TF_CPP_MIN_LOG_LEVEL: 0 shows all, 1 hides I, 2 hides I and W, 3 shows F only
# The source files whose lines probe for CUDA; without an NVIDIA GPU their failures are expected.
CUDA_PROBE_FILES = re.compile(r"^(cuda\w*|cudart_stub|gpu_device|gpu_cudamallocasync_allocator|dso_loader)\.cc$")
CONTINUATION = "To enable the following instructions:"  # the second line of cpu_feature_guard's INFO note
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"  # read once, when TensorFlow is imported
X86_MACHINES = ("x86_64", "amd64", "i686", "i386")  # platform.machine() of the CPUs oneDNN's x86 kernels run on


def verbose(environ=None):
    """Whether MULTI_LABEL_VERBOSE asks for TensorFlow's start-up lines (any value but "", 0, false, no)."""
    value = (os.environ if environ is None else environ).get(VERBOSE_VARIABLE, "")
    return value.strip().lower() not in ("", "0", "false", "no")


def nvidia_gpu_present():
    """Whether this machine has an NVIDIA GPU: its device files (/dev/nvidia0, ...) or `nvidia-smi`."""
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


def line_buffered_output():
    """Outside a terminal (CI logs, nohup, a pipe), writes each printed line at once rather than in blocks."""
    for stream in (sys.stdout, sys.stderr):
        if not stream.isatty() and hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)


def prefer_onednn(environ=None, machine=None):
    """Asks TensorFlow for its oneDNN kernels on an x86 CPU unless TF_ENABLE_ONEDNN_OPTS is set (module docstring).

    Call it before TensorFlow is imported: TensorFlow reads the variable once, at its start.

    Args:
        environ: dict or None. The environment to set it in; None: this process's (os.environ).
        machine: str or None. The CPU architecture as platform.machine() names it; None: this machine's.
    """
    environ = os.environ if environ is None else environ
    if (machine or platform.machine()).lower() in X86_MACHINES:
        environ.setdefault(ONEDNN_VARIABLE, "1")


def start_tensorflow():
    """Imports TensorFlow quietly (see the module docstring) and prints one line naming the GPUs it uses.

    Returns:
        list[str]. The GPUs TensorFlow sees, e.g. ["GPU:0 NVIDIA H200"]; [] on a CPU-only machine.
    """
    loud = verbose()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if loud else QUIET_TF_LEVEL)
    prefer_onednn()
    present = nvidia_gpu_present()
    level = _level(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    with contextlib.nullcontext() if loud else filtered_stderr(lambda text: start_up_noise(text, level, present)):
        import tensorflow as tf

        gpus = [_gpu_name(tf, device) for device in tf.config.list_physical_devices("GPU")]  # probes CUDA
    line = device_line(gpus, present)
    if line:
        print(line)
    return gpus


def device_line(gpus, present):
    """The one line about GPUs: the ones used, a note when an NVIDIA GPU exists but TensorFlow sees none, or None.

    Args:
        gpus: list[str]. The GPUs TensorFlow sees.
        present: bool. Whether the machine has an NVIDIA GPU (`nvidia_gpu_present`).
    """
    if gpus:
        return f"Using {len(gpus)} GPU{'s' * (len(gpus) > 1)}: {', '.join(gpus)}"
    if present:
        return ("note: this machine has an NVIDIA GPU but TensorFlow sees none (no CUDA libraries: "
                f"pip install 'tensorflow[and-cuda]'); running on the CPU. {VERBOSE_VARIABLE}=1 shows why")
    return None


def start_up_noise(lines, level, gpu_present):
    """Which of TensorFlow's start-up lines are noise: a list of bools, one per line.

    Args:
        lines: list[str]. What TensorFlow wrote to the standard error stream, one entry per line.
        level: int. TF_CPP_MIN_LOG_LEVEL: log lines below this severity are noise (TensorFlow hides
            them itself once it has read the variable).
        gpu_present: bool. Without an NVIDIA GPU, every line of a CUDA probe file is noise.
    """
    noise, previous = [], False
    for line in lines:
        match = LOG_LINE.match(line)
        if match:
            severity, source = match.groups()
            previous = SEVERITIES.index(severity) < level or (not gpu_present and bool(CUDA_PROBE_FILES.match(source)))
        elif line.strip() == ABSL_BANNER:
            previous = True
        elif not line.startswith(CONTINUATION):
            previous = False  # a line of its own (a Python warning, say): kept
        noise.append(previous)
    return noise


@contextlib.contextmanager
def filtered_stderr(is_noise):
    """Holds what is written to the standard error stream (Python's and C++'s) and writes back the lines kept.

    Args:
        is_noise: callable. Takes the list of lines written, returns one bool per line (True: leave it out).
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line, noise in zip(lines, is_noise(lines)) if not noise)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _level(text):
    try:
        return int(text)
    except ValueError:
        return 0


def _gpu_name(tf, device):
    name = tf.config.experimental.get_device_details(device).get("device_name")
    short = device.name.replace("/physical_device:", "")
    return f"{short} {name}" if name else short
