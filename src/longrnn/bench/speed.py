"""Speed benchmarks, always as ratios against a reference measured in the same process.

`speed(...)` times one training step — forward over (B, T, I) plus backward of the summed outputs —
for every registered cell (through `longrnn.models.Recurrent`, fused kernel where the cell has one,
and the step loop), and for ``torch.nn.LSTM`` as the reference. Threads are fixed, warm-up rounds
come first, and variants are timed round-robin so a machine's drift hits all of them alike.

Memory is the activation memory of training, counted rather than sampled: the bytes that one forward
allocates and still holds when it returns — what autograd keeps for backward, including tensors a
hand-written backward keeps on its context, plus the outputs (`held_after_forward_bytes`: the sum of
every op's net allocation under ``torch.profiler`` with ``profile_memory``). It is exact on CPU and
needs no quiet machine; transient buffers freed within the forward, and the gradients, are not in it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import statistics
import sys
import time

import torch

from longrnn.cells import available, make_cell
from longrnn.console import track
from longrnn.errors import UsageError, check_positive, unknown
from longrnn.kernels import cpu as cpu_kernels
from longrnn.models import Recurrent


def parse_variant(text: str) -> tuple[str, dict]:
    """``"lstm:gate=fast,forget_init=chrono:100"`` -> ``("lstm", {"gate": "fast", ...})``."""
    from longrnn.runs.config import parse_value

    name, _, rest = text.partition(":")
    if name not in available():
        raise unknown("cell", name, available())
    options = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"bad cell variant {text!r}; expected NAME or NAME:key=value,key=value")
        options[key] = parse_value(value)
    return name, options


def default_variants(device: str = "cpu") -> list[str]:
    """Every registered cell, the gated cells once more with each non-sigmoid gate, and the LSTM's
    hand-written sequence with each explicit engine (``auto`` is what the plain rows run); on the CPU the
    C++ loops of the LSTM and the GRU for every gate; on a CUDA device with Triton installed, the Triton
    kernels: the LSTM's and the GRU's for every gate, the BRC's, the nBRC's, the MGU's and the PLRNN's;
    on a CUDA device the orthogonal and convolutional cells replayed from CUDA graphs."""
    variants = list(available())
    gates = ("sigmoid", "fast", "softsign", "refine")
    for name in ("lstm", "gru"):
        variants += [f"{name}:gate={gate}" for gate in gates[1:]]
    variants += ["lstm:engine=eager", "lstm:engine=compiled", "lstm:gate=fast,engine=eager"]
    if device == "cpu" and cpu_kernels.available():  # builds the C++ extension on first use
        variants += [f"{name}:gate={gate},engine=cpp" for name in ("lstm", "gru") for gate in gates]
    if device.startswith("cuda") and importlib.util.find_spec("triton") is not None:
        variants += [f"{name}:gate={gate},engine=triton" for name in ("lstm", "gru") for gate in gates]
        variants += [f"{name}:engine=triton" for name in ("brc", "nbrc", "mgu", "plrnn")]
    if device.startswith("cuda"):
        variants += [f"{name}:engine=graph" for name in ("orthogonal", "conv_unitary")]
    return variants


def _train_step_seconds(module, x: torch.Tensor) -> float:
    """Seconds of one forward + backward of ``module(x)[0].sum()`` (on a GPU: until it has finished)."""
    x.grad = None
    module.zero_grad(set_to_none=True)
    _synchronize(x.device)
    start = time.perf_counter()
    module(x)[0].sum().backward()
    _synchronize(x.device)
    return time.perf_counter() - start


def held_after_forward_bytes(module, x: torch.Tensor) -> int:
    """Bytes allocated by one forward of ``module(x)[0].sum()`` and not yet freed when it returns; the
    buffers the C++ kernels keep between calls are released first, so that the forward allocates (and
    counts) all it holds."""
    from torch.profiler import ProfilerActivity, profile

    cpu_kernels.release_buffers()

    with stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = module(x)[0].sum()
    del out
    return sum(event.self_cpu_memory_usage for event in prof.events())


@contextlib.contextmanager
def stderr_silenced():
    """The profiler's C++ side prints start/stop lines on file descriptor 2; drop them."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _inference_seconds(module, x: torch.Tensor) -> float:
    """Seconds of one forward without autograd (on a GPU: until it has finished)."""
    _synchronize(x.device)
    start = time.perf_counter()
    with torch.no_grad():
        module(x)
    _synchronize(x.device)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_device(name: str) -> torch.device:
    """``cpu`` or an available ``cuda[:N]``; a UsageError otherwise."""
    if name != "cpu" and not name.startswith("cuda"):
        raise unknown("device", name, ["cpu", "cuda", "cuda:N"])
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} is not available on this machine; allowed: cpu")
    return torch.device(name)


def speed(
    cells=None,
    batch_size: int = 32,
    seq_len: int = 1000,
    hidden_size: int = 128,
    input_size: int = 32,
    threads: int = 1,
    warmup_rounds: int = 2,
    repeats: int = 5,
    seed: int = 0,
    quiet: bool = False,
    device: str = "cpu",
) -> list[dict]:
    """Rows ``{"variant", "ms", "ratio", "ratio_min", "ratio_max", "vs_plain", "inference_ms",
    "inference_ratio", "held_mib", "memory_ratio"}``.

    ``ratio`` is training-step time / ``torch.nn.LSTM``'s, ``inference_ratio`` the same for a forward
    without autograd, ``memory_ratio`` the bytes a forward holds for backward / its; ``vs_plain`` (for
    variants with options, e.g. ``lstm:gate=fast``) is time / the plain cell's step loop; time ratios are
    medians of per-round ratios.
    ``cells`` are names or ``NAME:key=value,...`` variants; default: `default_variants()`.
    On ``device="cuda"`` the reference ``torch.nn.LSTM`` runs cuDNN.
    """
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len), ("hidden_size", hidden_size),
                        ("input_size", input_size), ("threads", threads), ("repeats", repeats)):
        check_positive(name, value)
    check_positive("warmup_rounds", warmup_rounds, allow_zero=True)
    cells = default_variants(device) if not cells else cells
    specs = [parse_variant(c) for c in cells]
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dev = bench_device(device)
    x = torch.randn(batch_size, seq_len, input_size, device=dev, requires_grad=True)
    reference = torch.nn.LSTM(input_size, hidden_size, batch_first=True).to(dev)

    variants = [("torch.nn.LSTM (reference)", reference)]
    for label, (name, options) in zip(cells, specs):
        cell = make_cell(name, input_size, hidden_size, **options).to(dev)
        variants.append((f"{label} (step loop)", Recurrent(cell, fused=False)))
        if cell.fused_forward(x[:, :1].detach(), cell.init_state(batch_size)) is not None:
            variants.append((f"{label} (fused)", Recurrent(cell, fused=True)))

    # Round-robin: every round times each variant once, so slow drift of a noisy machine hits all
    # variants alike; each ratio is the median over rounds of (variant / reference in that round). Each
    # timed step follows an untimed one of the same variant, as in training: the steady state, where the
    # C++ kernels reuse the buffers of the step before (longrnn.kernels.cpu) and not those of another
    # variant's shapes.
    times = {label: [] for label, _ in variants}
    inference = {label: [] for label, _ in variants}
    rounds = track(range(warmup_rounds + repeats), warmup_rounds + repeats, "bench speed", disable=quiet)
    for round_ in rounds:
        for label, module in variants:
            _train_step_seconds(module, x)
            t, t_inference = _train_step_seconds(module, x), _inference_seconds(module, x)
            if round_ >= warmup_rounds:
                times[label].append(t)
                inference[label].append(t_inference)
    held = {label: held_after_forward_bytes(module, x) for label, module in variants}
    ref, ref_held = times[variants[0][0]], held[variants[0][0]]
    rows = []
    for label, ts in times.items():
        ratios = [t / r for t, r in zip(ts, ref)]
        inference_ratios = [t / r for t, r in zip(inference[label], inference[variants[0][0]])]
        row = {"variant": label, "ms": 1000 * statistics.median(ts), "ratio": statistics.median(ratios),
               "ratio_min": min(ratios), "ratio_max": max(ratios), "vs_plain": None,
               "inference_ms": 1000 * statistics.median(inference[label]),
               "inference_ratio": statistics.median(inference_ratios),
               "held_mib": held[label] / 2**20, "memory_ratio": held[label] / ref_held}
        plain = f"{label.split(':')[0]} (step loop)"  # "lstm:gate=fast (step loop)" -> "lstm (step loop)"
        if ":" in label and plain in times:
            row["vs_plain"] = statistics.median(t / p for t, p in zip(ts, times[plain]))
        rows.append(row)
    return rows


def cpu_name() -> str:
    """The processor's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def speed_table(rows: list[dict], setup: str) -> str:
    """`speed`'s rows as a Markdown table under the ``setup`` line: times in ms, memory held for backward
    in MiB, each beside its ratio to torch.nn.LSTM measured in the same process."""
    lines = [
        f"{setup}\n",
        ("| variant | fwd+bwd (ms) | × torch.nn.LSTM | range over rounds | × plain cell's step loop "
         "| inference (ms) | inference × torch.nn.LSTM | held for backward (MiB) | memory × torch.nn.LSTM |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        plain = "" if r["vs_plain"] is None else f"{r['vs_plain']:.2f}"
        lines.append(f"| {r['variant']} | {r['ms']:.1f} | {r['ratio']:.2f} | {r['ratio_min']:.2f}–{r['ratio_max']:.2f} "
                     f"| {plain} | {r['inference_ms']:.1f} | {r['inference_ratio']:.2f} | {r['held_mib']:.1f} "
                     f"| {r['memory_ratio']:.2f} |")
    return "\n".join(lines) + "\n"
