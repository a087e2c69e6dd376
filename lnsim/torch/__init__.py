"""lnsim.torch: B-bit Madam as a PyTorch optimiser, bit-true to the golden model (needs ``pip install "lnsim[torch]"``)."""
