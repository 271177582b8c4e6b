"""The same ResNet-18 training step in PyTorch, for a reference figure beside bench_train.py.

Usage: python3 benchmarks/bench_train_torch.py [--width 1.0] [--image-size 224] [--batch 32]
           [--steps 20] [--warmup 3] [--classes 20] [--threads N] [--memory-format channels_last|contiguous]

Runs only where torch is importable (it is not a dependency of the project). The network is the
one of backbone/resnet.py written out in torch: 7x7 stride-2 stem, 3x3 max pool, four stages of two
basic blocks (64/128/256/512 channels times --width), BatchNorm, global max pooling (the project's
default `pooling`) and a linear head, trained with BCE-with-logits and Adam on random data in
channels-last memory format (or torch's default NCHW layout with --memory-format contiguous).
Peak memory is the process's peak resident set.
"""

import argparse
import os
import platform
import resource
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    print("torch is not installed; nothing to measure")
    sys.exit(0)


class BasicBlock(nn.Module):
    def __init__(self, inputs, filters, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters)
        self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters)
        self.down = None
        if stride != 1 or inputs != filters:
            self.down = nn.Sequential(nn.Conv2d(inputs, filters, 1, stride, bias=False), nn.BatchNorm2d(filters))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self, num_classes, width=1.0):
        super().__init__()
        channels = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 7, 2, 3, bias=False), nn.BatchNorm2d(channels[0]),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, inputs = [], channels[0]
        for stage, filters in enumerate(channels):
            for index in range(2):
                blocks.append(BasicBlock(inputs, filters, 2 if stage > 0 and index == 0 else 1))
                inputs = filters
        self.blocks = nn.Sequential(*blocks)
        self.logits = nn.Linear(inputs, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.logits(torch.amax(x, dim=(2, 3)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0: torch's default")
    parser.add_argument("--memory-format", choices=["channels_last", "contiguous"], default="channels_last",
                        help="channels_last (NHWC, as TensorFlow) or contiguous (NCHW, torch's default layout)")
    parser.add_argument("--autocast", choices=["none", "bfloat16"], default="none",
                        help="bfloat16: the forward pass and loss under torch.autocast('cpu', torch.bfloat16), "
                             "PyTorch's mixed precision on CPU (the counterpart of Keras's mixed_bfloat16)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layout = getattr(torch, {"channels_last": "channels_last", "contiguous": "contiguous_format"}[args.memory_format])
    model = ResNet18(args.classes, args.width).to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    images = (torch.rand(args.batch, 3, args.image_size, args.image_size) * 255).to(memory_format=layout)
    labels = torch.randint(0, 2, (args.batch, args.classes)).float()
    load_before = os.getloadavg()
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bfloat16"):
            loss = loss_fn(model(images / 255.0), labels)  # normalisation inside the step, as in the Keras model
        loss.backward()
        optimizer.step()
        float(loss.detach())  # waits for the step
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    load_after = os.getloadavg()
    times.sort()
    median = times[len(times) // 2]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"load average (1/5/15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"torch resnet18 width {args.width} {args.image_size}px batch {args.batch} "
          f"{'float32' if args.autocast == 'none' else 'bfloat16 autocast'} {args.memory_format}: "
          f"{args.batch / median:.1f} images/s (median step {median * 1000:.0f} ms; mean "
          f"{args.batch * len(times) / sum(times):.1f} images/s over {args.steps} steps), "
          f"peak memory {peak:.0f} MiB (process RSS)")


if __name__ == "__main__":
    main()
