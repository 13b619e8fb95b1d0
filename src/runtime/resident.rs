//! What the broker keeps resident once it has started.
//!
//! Most of an idle broker's RSS is its own binary's code, mapped from the
//! page cache: start-up runs code from all over the executable (argument
//! parsing, catalog loading, schema compiling, the store, recovery), and
//! the kernel maps 64 KiB around every page it faults in. None of that is
//! needed again until the next start. [`shed_start_up`] unmaps the
//! executable's read-only pages and returns free heap to the kernel; what
//! requests use comes back by minor fault from the page cache (the file's
//! pages stay cached: this lowers the process's RSS, not the page cache a
//! cgroup is charged for, which the kernel reclaims under pressure anyway).

use std::ffi::{c_int, c_void};

/// Drops the mapping of the executable's never-written pages and trims the
/// heap. Safe at any time: see [`read_only_segments`].
pub fn shed_start_up() {
    // SAFETY: malloc_trim only gives free heap pages back to the kernel.
    unsafe { libc::malloc_trim(0) };
    for (start, len) in read_only_segments() {
        // SAFETY: the range is page-aligned, inside a segment of our own
        // executable that is mapped read-only from the file and never
        // written (not writable, not RELRO), so its pages are exactly the
        // file's: dropping them loses nothing, and a later access maps the
        // same bytes again from the page cache.
        unsafe { libc::madvise(start as *mut c_void, len, libc::MADV_DONTNEED) };
    }
}

/// The executable's loadable segments that are neither writable nor
/// relocated (RELRO), as page-aligned `(start, len)` ranges rounded
/// inwards, so no page shared with another segment is included.
fn read_only_segments() -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    // SAFETY: the callback only reads the program headers the loader hands
    // it, and writes to `out`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&raw mut out).cast()) };
    out
}

unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, out: *mut c_void) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our `out`.
    let (info, out) = unsafe { (&*info, &mut *out.cast::<Vec<(usize, usize)>>()) };
    // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    let page = page_size();
    let base = info.dlpi_addr as usize;
    let relro: Vec<(usize, usize)> = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_GNU_RELRO)
        .map(|h| {
            (
                base + h.p_vaddr as usize,
                base + (h.p_vaddr + h.p_memsz) as usize,
            )
        })
        .collect();
    for h in headers {
        if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
            continue;
        }
        let (start, end) = (
            base + h.p_vaddr as usize,
            base + (h.p_vaddr + h.p_filesz) as usize,
        );
        if relro.iter().any(|&(s, e)| s < end && start < e) {
            continue;
        }
        let (start, end) = (start.next_multiple_of(page), end / page * page);
        if end > start {
            out.push((start, end - start));
        }
    }
    // The first object is the executable itself: stop there.
    1
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|p| *p > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_code_and_keeps_running_after_shedding_it() {
        let segments = read_only_segments();
        let here = finds_the_code_and_keeps_running_after_shedding_it as *const () as usize;
        assert!(
            segments.iter().any(|&(s, l)| (s..s + l).contains(&here)),
            "this function's code lies in a shed segment: {segments:x?}"
        );
        shed_start_up();
        // Code, constants and formatting all come back from the file.
        assert_eq!(format!("{:?}", [1, 2, 3]), "[1, 2, 3]");
        assert_eq!(read_only_segments(), segments);
    }
}
