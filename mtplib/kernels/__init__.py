"""kernels subpackage of mtplib."""
