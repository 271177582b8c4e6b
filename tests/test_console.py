"""The quiet start: which of TensorFlow's start-up lines are noise, the stream filter, the GPU line."""

import os
import sys

import pytest

from utils import console

# What TensorFlow 2.21 writes at start on a machine without a GPU (TF_CPP_MIN_LOG_LEVEL=0).
START_UP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796146116.779307   29784 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors.\n",
    "I0000 00:00:1796146116.779620   29784 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.\n",
    "I0000 00:00:1796146116.840226   29784 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.\n",
    "E0000 00:00:1796146121.379419   29784 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)\n",
]
REAL_ERROR = "E0000 00:00:1796146121.379419   29784 op_kernel.cc:1830] OP_REQUIRES failed at conv_ops.cc: bad shape\n"
REAL_WARNING = "W0000 00:00:1796146121.379419   29784 cache_dataset_ops.cc:916] The iterator did not fully read\n"
PYTHON_WARNING = "/x/keras/src/layers/layer.py:421: UserWarning: `build()` was called on layer 'x'\n"


def test_every_start_up_line_is_noise_without_a_gpu():
    assert console.start_up_noise(START_UP, level=2, gpu_present=False) == [True] * len(START_UP)


def test_with_a_gpu_cuda_errors_stay_and_info_lines_go():
    assert console.start_up_noise(START_UP, level=2, gpu_present=True) == [True, True, True, True, True, False]


def test_info_lines_stay_when_the_user_asks_for_them():
    noise = console.start_up_noise(START_UP, level=0, gpu_present=True)
    assert noise == [True, False, False, False, False, False]  # only absl's banner goes


def test_real_errors_warnings_and_python_warnings_stay():
    lines = [START_UP[3], PYTHON_WARNING, REAL_ERROR, START_UP[4], REAL_WARNING]
    assert console.start_up_noise(lines, level=1, gpu_present=False) == [True, False, False, False, False]
    assert console.start_up_noise([REAL_WARNING], level=2, gpu_present=False) == [True]  # as TensorFlow would


def test_filtered_stderr_keeps_what_is_not_noise_from_python_and_from_the_c_level(capfd, monkeypatch):
    monkeypatch.setattr(sys, "stderr", open(2, "w", closefd=False))  # as outside pytest: Python writes to fd 2
    with console.filtered_stderr(lambda lines: [line.startswith("noise") for line in lines]):
        os.write(2, b"noise from C\nkept from C\n")
        print("noise from Python", file=sys.stderr)
        print("kept from Python", file=sys.stderr)
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "kept from C\nkept from Python\nafter\n"


def test_filtered_stderr_writes_back_what_it_held_when_the_block_fails(capfd):
    with pytest.raises(ImportError):
        with console.filtered_stderr(lambda lines: [False] * len(lines)):
            os.write(2, b"why it failed\n")
            raise ImportError("no tensorflow")
    assert capfd.readouterr().err == "why it failed\n"


def test_device_line():
    assert console.device_line(["GPU:0 NVIDIA H200"], present=True) == "Using 1 GPU: GPU:0 NVIDIA H200"
    assert console.device_line(["GPU:0 A", "GPU:1 B"], present=True) == "Using 2 GPUs: GPU:0 A, GPU:1 B"
    assert console.device_line([], present=False) is None
    note = console.device_line([], present=True)
    assert note.startswith("note: this machine has an NVIDIA GPU but TensorFlow sees none")
    assert console.VERBOSE_VARIABLE in note


@pytest.mark.parametrize("value, loud", [("", False), ("0", False), ("no", False), ("False", False), ("1", True),
                                         ("yes", True)])
def test_verbose_variable(value, loud):
    assert console.verbose({console.VERBOSE_VARIABLE: value}) is loud
    assert console.verbose({}) is False


def test_gpu_detection_reads_the_device_files_and_nvidia_smi(monkeypatch):
    monkeypatch.setattr(console.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(console.shutil, "which", lambda name: None)
    assert console.nvidia_gpu_present() is False
    monkeypatch.setattr(console.shutil, "which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None)
    assert console.nvidia_gpu_present() is True
    monkeypatch.setattr(console.shutil, "which", lambda name: None)
    monkeypatch.setattr(console.glob, "glob", lambda pattern: ["/dev/nvidia0"] if pattern.startswith("/dev/") else [])
    assert console.nvidia_gpu_present() is True


def test_output_is_line_buffered_outside_a_terminal(monkeypatch):
    class Stream:
        def __init__(self, terminal):
            self.terminal, self.changed = terminal, None

        def isatty(self):
            return self.terminal

        def reconfigure(self, **changes):
            self.changed = changes

    log, terminal = Stream(False), Stream(True)
    monkeypatch.setattr(sys, "stdout", log)
    monkeypatch.setattr(sys, "stderr", terminal)
    console.line_buffered_output()
    assert log.changed == {"line_buffering": True} and terminal.changed is None
