//! Small shape structs shared by the dense and the look-up kernels.

/// One convolution's geometry, Caffe semantics: input (C_s, H_s, W_s), `c_out` kernels of
/// `kernel`×`kernel`, input and output channels split into `groups` independent groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
}

impl ConvShape {
    pub fn h_out(&self) -> usize {
        (self.h_in + 2 * self.pad - self.kernel) / self.stride + 1
    }
    pub fn w_out(&self) -> usize {
        (self.w_in + 2 * self.pad - self.kernel) / self.stride + 1
    }
    /// Input channels per group (C_s / groups).
    pub fn c_in_group(&self) -> usize {
        self.c_in / self.groups
    }
    /// Output channels per group (C_t / groups).
    pub fn c_out_group(&self) -> usize {
        self.c_out / self.groups
    }
    pub fn input_len(&self) -> usize {
        self.c_in * self.h_in * self.w_in
    }
    pub fn output_len(&self) -> usize {
        self.c_out * self.h_out() * self.w_out()
    }
    /// Whether the geometry is one Caffe accepts: channels divisible by groups, the kernel
    /// fits in the padded input, every size positive.
    pub fn is_valid(&self) -> bool {
        self.groups > 0
            && self.stride > 0
            && self.kernel > 0
            && self.c_in > 0
            && self.c_out > 0
            && self.c_in.is_multiple_of(self.groups)
            && self.c_out.is_multiple_of(self.groups)
            && self.h_in + 2 * self.pad >= self.kernel
            && self.w_in + 2 * self.pad >= self.kernel
    }
}

/// A fully-connected layer's geometry: `c_in` (C_s) inputs, `c_out` (C_t) outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FcShape {
    pub c_in: usize,
    pub c_out: usize,
}
