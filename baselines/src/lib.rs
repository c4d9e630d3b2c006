//! The dense AlexNet forward pass over BLAS.
