//! Dense Caffe-style ops over BLAS, each with a reference twin (to be written).
