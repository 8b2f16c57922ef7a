"""longrnn: recurrent networks that learn very long-term dependencies.

Layers (each imports only from the ones above it):
    gates, convexp        pure math
    cells                 one Cell protocol, one file per family
    models                Recurrent layer, SequenceModel
    tasks                 long-dependency tasks with honest memoryless baselines
    training              BPTT trainer, checkpoints
    runs, report, bench   run directories, tables and plots, speed ratios
    cli                   the `longrnn` command
"""

__version__ = "0.1.0"
