//! The working memory of a factorisation, estimated from its shape and checked against a
//! limit before anything is allocated: a size typed by mistake (`-k 100000`) is refused with
//! the estimate, not an abort when an allocation fails.

use super::NmfParams;
use crate::error::ParamError;

/// Bytes a fit of `bins × frames` data with `components` components (of which `free` are
/// updated) holds at once, with the current thread pool: the scaled data, the factors, the
/// per-block working memory and the summed update terms, the initialisation's SVD, and with
/// every template fixed two copies of the activations. An upper estimate (the largest
/// allocations, counted at their full size); saturates instead of overflowing.
///
/// ```
/// let small = demix::nmf::memory_estimate(1025, 517, 4, 4);
/// let huge = demix::nmf::memory_estimate(1025, 517, 100_000, 100_000);
/// assert!(small < 200 << 20 && huge > 100 << 30);
/// ```
pub fn memory_estimate(bins: usize, frames: usize, components: usize, free: usize) -> u64 {
    let (f, t, k, free) = (
        bins as u128,
        frames as u128,
        components as u128,
        free as u128,
    );
    let slots = 6 * rayon::current_num_threads().max(1) as u128;
    // Per block in flight: the model block, its W terms, its H terms and its Gram matrix.
    let slot = 4 * (2 * 256 * f + 2 * f * free + 3 * 256 * k + k * free);
    // The W terms summed over blocks, in f64.
    let w_terms = 8 * (2 * f * free + free + k * free);
    // The data, the factors with a transposed copy of each, and the engine's own buffers.
    let data = 4 * t * f;
    let factors = 4 * 2 * (f * k + t * k);
    let engine = 4 * (k * free + f * free + k * k + k * f + t * k);
    // NNDSVDA's randomized SVD works on (frames + bins) × (k + oversampling) in f64, twice.
    let init = 8 * 2 * (t + f) * (k + 10);
    // With every template fixed: the activations a cost was summed from, and those of the
    // last cost, to go back to when longer steps raise it.
    let held = if free == 0 { 4 * 2 * t * k } else { 0 };
    let total = slots * slot + w_terms + data + factors + engine + init + held;
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// The memory the system has available for new allocations, where it says so (Linux's
/// `MemAvailable`); `None` elsewhere.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses a fit of `bins × frames` data that would need more than the limit of `params`.
pub(crate) fn check_memory(
    bins: usize,
    frames: usize,
    components: usize,
    params: &NmfParams,
) -> Result<(), ParamError> {
    let Some(limit) = params.max_memory.or_else(available_memory) else {
        return Ok(());
    };
    let mut needs = memory_estimate(bins, frames, components, params.free_columns());
    if params.has_convolutive() {
        // The H update's terms of every frame, for convolutive templates.
        let terms = (frames as u64)
            .saturating_mul(components as u64)
            .saturating_mul(8);
        needs = needs.saturating_add(terms);
    }
    if needs > limit {
        return Err(ParamError::MemoryLimit {
            needs,
            limit,
            components,
            frames,
            bins,
        });
    }
    Ok(())
}
