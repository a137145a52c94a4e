//! What the CPU can do, for the functions with vector paths (the XGBoost
//! tree walks in scoring, the GBDT split scan in training). One place, so
//! that every vector path is chosen by the same check.

/// Whether this CPU has AVX2 (`std` caches the answer after the first call).
pub(crate) fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU has AVX-512F (`std` caches the answer after the first call).
pub(crate) fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
