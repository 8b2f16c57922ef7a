"""MemUP on long sequences you provide: train a memory by predicting its most uncertain future targets,
a few steps of backpropagation at a time, so memory use does not grow with the sequence length.

Your data: x (n, time, features) and y (n, time) class indices, -100 where a step has no target (here:
the class is shown at step 0 and asked at the last step only; everything between is noise). MemUP
(Sorokin et al., NeurIPS 2022) backpropagates through `rollout` steps only, yet the memory learns the
dependency: the targets it predicts from the present are the uncertain ones in the future.

    python examples/memup_long_sequences.py          # a few minutes on a laptop CPU
    python examples/memup_long_sequences.py --tiny   # seconds (what the tests run)
"""

import sys

import torch

import longrnn


def make_data(n: int, length: int, classes: int, generator: torch.Generator):
    label = torch.randint(classes, (n,), generator=generator)
    x = torch.randn(n, length, classes + 1, generator=generator) * 0.3
    x[:, 0, :classes] = torch.nn.functional.one_hot(label, classes) * 3.0  # the class, once
    x[:, -1, classes] = 3.0  # the question, at the end
    y = torch.full((n, length), -100)
    y[:, -1] = label
    return x, y


def main(tiny: bool = False) -> float:
    torch.manual_seed(0)
    classes = 4
    length, batches, hidden = (20, 4, 16) if tiny else (100, 100, 32)
    x_train, y_train = make_data(4096, length, classes, torch.Generator().manual_seed(1))
    x_test, y_test = make_data(512, length, classes, torch.Generator().manual_seed(2))  # its own stream
    memory = longrnn.nn.GRU(classes + 1, hidden, batch_first=True)
    memup = longrnn.MemUP.for_layer(memory, output_size=classes, loss="cross_entropy", rollout=10, targets=5,
                                    predict_every=5, hidden=64)
    optimizer = torch.optim.Adam(memup.parameters(), lr=1e-3)
    for batch in range(batches):
        pick = torch.randint(len(x_train), (64,))
        loss = memup.fit(x_train[pick], y_train[pick], optimizer)  # every rollout of these 64 sequences
        if (batch + 1) % max(batches // 5, 1) == 0:
            print(f"batch {batch + 1}: MemUP loss {loss:.3f}")
    accuracy = (memup.predict(x_test)[:, -1].argmax(-1) == y_test[:, -1]).float().mean().item()
    print(f"test accuracy at the last step {accuracy:.3f} (chance {1 / classes:.2f})")
    return accuracy


if __name__ == "__main__":
    main(tiny="--tiny" in sys.argv)
