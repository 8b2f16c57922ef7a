"""Pure math, no module state: gate functions (`gates`), the convolutional exponential by FFT
(`convexp`) and lattice shapes as users write them (`lattice`)."""
