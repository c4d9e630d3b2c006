//! The Q-CNN forward pass.
