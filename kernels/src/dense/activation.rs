//! Element-wise and per-position ops: ReLU and softmax.

/// ReLU in place, Caffe's `max(x, 0)` (a NaN stays NaN). Auto-vectorised.
pub fn relu(x: &mut [f32]) {
    for v in x {
        *v = if *v < 0.0 { 0.0 } else { *v };
    }
}

/// Softmax over channels at every position, max-subtracted for range safety.
///
/// `input`, `output`: Layout (C, P) with P = len / `channels` positions (P = 1 for a
/// vector of class scores). `output` is fully overwritten.
pub fn softmax(input: &[f32], output: &mut [f32], channels: usize) {
    assert!(channels > 0, "softmax over zero channels");
    assert_eq!(
        input.len(),
        output.len(),
        "softmax input and output lengths"
    );
    assert_eq!(
        input.len() % channels,
        0,
        "softmax length is not a multiple of channels"
    );
    let positions = input.len() / channels;
    if positions == 1 {
        softmax_vector(input, output);
        return;
    }
    for p in 0..positions {
        let at = |c: usize| c * positions + p;
        let max = (0..channels)
            .map(|c| input[at(c)])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for c in 0..channels {
            let e = (input[at(c)] - max).exp();
            output[at(c)] = e;
            sum += e;
        }
        for c in 0..channels {
            output[at(c)] /= sum;
        }
    }
}

/// Softmax of one contiguous vector.
fn softmax_vector(input: &[f32], output: &mut [f32]) {
    let max = input.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for (o, &x) in output.iter_mut().zip(input) {
        *o = (x - max).exp();
        sum += *o;
    }
    let inv = 1.0 / sum;
    for o in output {
        *o *= inv;
    }
}
