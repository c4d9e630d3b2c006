//! Look-up-table fully-connected kernels (to be written).
