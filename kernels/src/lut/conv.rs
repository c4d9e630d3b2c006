//! Look-up-table convolution kernels (to be written).
