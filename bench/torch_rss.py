"""Peak resident memory of PyTorch training a CIFAR ResNet at batch 128 (3 steps of SGD with
momentum), for the memory target of docs/performance.md: compare with the "peak RSS" that
`build/resnet bench --mode train` prints for the same network and batch.

Usage: PYTHON bench/torch_rss.py ARCH [channels_last]   (run from the repository root; PYTHON is
/usr/bin/python3 for Debian's PyTorch or bench/.venv/bin/python for the newest)."""
import resource
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, "tools")
import torch_ref  # noqa: E402  (the same modules the parity tests use)

torch.set_num_threads(1)
torch_ref.relu = F.relu
model = torch_ref.build(sys.argv[1])
cl = len(sys.argv) > 2
if cl:
    model = model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
x = torch.randn(128, 3, 32, 32)
y = torch.randint(0, 10, (128,))
if cl:
    x = x.to(memory_format=torch.channels_last)
for _ in range(3):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
print(torch.__version__, " ".join(sys.argv[1:]), "peak RSS MB",
      round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
