"""A machine-independent memory measure for tests: the bytes autograd saves for the backward."""

import torch


def bytes_saved_for_backward(build_loss) -> int:
    """Bytes of the tensors autograd saves while ``build_loss()`` builds its graph (views counted by
    size), then runs its backward. Tensors saved inside a checkpoint are held by the checkpoint, which
    stores only its inputs, so they are not seen."""
    sizes = []

    def pack(t):
        sizes.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = build_loss()
    loss.backward()
    return sum(sizes)
