//! Run-time CPU features for the vectorised kernels (the flow's expectations, the
//! planner's criteria): each is compiled twice, for the baseline x86_64 (SSE2) and with
//! `#[target_feature(enable = "avx2,fma")]`, and this check picks one. No `mul_add` is
//! written and Rust never contracts a·b + c into an FMA by itself, so both builds
//! compute the same bits; shipped binaries need no `target-cpu` flag.

/// Whether this CPU runs the AVX2 + FMA builds (the check is cached by std).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
