"""The ResNet-50 training step in PyTorch on a CUDA GPU, the reference beside bench_train.py --backbone resnet50.

Usage: python3 benchmarks/bench_gpu_torch.py [--image-size 224] [--batch 128] [--steps 30] [--warmup 5]
           [--classes 20] [--precision float32|float16]

Runs only where torch is importable and sees a CUDA GPU (torch is not a dependency of the project);
otherwise it prints why and exits 0. The network is backbone/resnet.py's resnet50 written out in
torch: 7x7 stride-2 stem, 3x3 max pool, four stages of 3/4/6/3 bottleneck blocks (stride on the 3x3,
ResNet v1.5, as torchvision and the project), BatchNorm with zero-initialised gamma on each block's
last BatchNorm, global max pooling (the project's default `pooling`) and a linear head, trained with
BCE-with-logits and Adam on random data in channels-last memory format (cuDNN autotuning on).
float16 runs the forward pass under torch.autocast with a GradScaler, as Keras's mixed_float16 does.
float32 convolutions may use TF32 tensor cores on Ampere and later GPUs, in torch as in TensorFlow
(both frameworks' default). Peak memory is the CUDA allocator's.
"""

import argparse
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    print("torch is not installed; nothing to measure")
    sys.exit(0)


class Bottleneck(nn.Module):
    def __init__(self, inputs, inner, filters, stride):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(inputs, inner, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(),
            nn.Conv2d(inner, inner, 3, stride, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU(),
            nn.Conv2d(inner, filters, 1, bias=False), nn.BatchNorm2d(filters))
        nn.init.zeros_(self.branch[-1].weight)  # each residual branch starts as identity, as the project's
        self.down = None
        if stride != 1 or inputs != filters:
            self.down = nn.Sequential(nn.Conv2d(inputs, filters, 1, stride, bias=False), nn.BatchNorm2d(filters))

    def forward(self, x):
        return torch.relu(self.branch(x) + (x if self.down is None else self.down(x)))


class ResNet50(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, inputs = [], 64
        for stage, count in enumerate((3, 4, 6, 3)):
            planes = 64 * 2 ** stage
            for index in range(count):
                blocks.append(Bottleneck(inputs, planes, planes * 4, 2 if stage > 0 and index == 0 else 1))
                inputs = planes * 4
        self.blocks = nn.Sequential(*blocks)
        self.logits = nn.Linear(inputs, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.logits(torch.amax(x, dim=(2, 3)))


def step_times(args):
    """Seconds of each timed training step (after `args.warmup` untimed ones)."""
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = ResNet50(args.classes).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    half = args.precision == "float16"
    scaler = torch.amp.GradScaler("cuda", enabled=half)
    images = (torch.rand(args.batch, 3, args.image_size, args.image_size, device=device) * 255).to(
        memory_format=torch.channels_last)
    labels = torch.randint(0, 2, (args.batch, args.classes), device=device).float()
    times = []
    for step in range(args.warmup + args.steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=half):
            loss = loss_fn(model(images / 255.0), labels)  # normalisation inside the step, as in the Keras model
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--precision", choices=["float32", "float16"], default="float32",
                        help="float16: torch.autocast and a GradScaler (mixed precision)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"torch {torch.__version__} sees no CUDA GPU; nothing to measure")
        return
    times = step_times(args)
    median = times[len(times) // 2]
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"{torch.cuda.get_device_name()}")
    print(f"torch resnet50 {args.image_size}px batch {args.batch} {args.precision} channels_last: "
          f"{args.batch / median:.1f} images/s (median step {median * 1000:.1f} ms; mean "
          f"{args.batch * len(times) / sum(times):.1f} images/s over {args.steps} steps), "
          f"peak memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (CUDA allocator)")


if __name__ == "__main__":
    main()
