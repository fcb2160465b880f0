//! Transparent huge pages for large buffers, as NumPy asks for its large arrays.
//!
//! A fresh buffer of hundreds of megabytes (a whole recording's spectrogram) is otherwise
//! faulted in 4 KiB at a time when first written, which costs as much as the STFT itself.
//! On Linux, with transparent huge pages in `madvise` mode (the usual default), advising the
//! buffer before it is touched makes the kernel map it 2 MiB at a time. Elsewhere, or when the
//! kernel declines, nothing changes.

/// Buffers smaller than this are left alone.
const MIN_BYTES: usize = 8 << 20;

/// Advises the kernel to back `buf` with huge pages. Call it before the buffer is written: the
/// pages already touched keep their size.
pub(crate) fn advise<T>(buf: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let len = std::mem::size_of_val(buf);
        if len < MIN_BYTES {
            return;
        }
        let start = buf.as_mut_ptr() as usize;
        let (first, last) = (start.next_multiple_of(HUGE), (start + len) / HUGE * HUGE);
        if last > first {
            // SAFETY: [first, last) lies inside `buf`, which we borrow mutably; madvise with
            // MADV_HUGEPAGE changes only how the pages are mapped, never their contents. Its
            // result is ignored on purpose: declining is harmless.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (buf, MIN_BYTES);
}
