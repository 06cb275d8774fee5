//! Kinds of the `autoscaling` group.

mod hpa;

pub use hpa::HorizontalPodAutoscalerStrategy;
