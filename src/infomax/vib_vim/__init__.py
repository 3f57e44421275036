"""Study A, vib_vim: the Variational InfoMax objective (VIM) against the Variational Information
Bottleneck (VIB) and a deterministic baseline, on Alemi et al.'s MLP (MNIST)."""
