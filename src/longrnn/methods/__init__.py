"""Methods that act on a model beside its training loss: the warm-up to reachable multistability and
its measures VAA / VAA* (`warmup`), penalties added to the loss (`regularizers`), and the gate
statistics logged during training (`diagnostics`)."""
