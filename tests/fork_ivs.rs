//! A child made by `fork()` (without `exec`) must not repeat its parent's
//! IVs: `src/iv.rs` discards the per-thread IV pools in the child. Run
//! without the test harness (`harness = false`) so that the process has a
//! single thread when it forks.

#[cfg(unix)]
mod unix {
    unsafe extern "C" {
        fn fork() -> i32;
        fn pipe(fds: *mut i32) -> i32;
        fn write(fd: i32, buf: *const u8, n: usize) -> isize;
        fn read(fd: i32, buf: *mut u8, n: usize) -> isize;
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        fn _exit(code: i32) -> !;
    }

    pub fn child_and_parent_ivs_differ() {
        // Fill this thread's pool: parent and child would both take the next
        // IV from its copy if the child kept it.
        let _ = fieldcrypt::iv::random_iv();
        let mut fds = [0i32; 2];
        assert_eq!(unsafe { pipe(fds.as_mut_ptr()) }, 0);
        let pid = unsafe { fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ivs: Vec<u8> = (0..4).flat_map(|_| fieldcrypt::iv::random_iv()).collect();
            let ok = unsafe { write(fds[1], ivs.as_ptr(), ivs.len()) } == ivs.len() as isize;
            unsafe { _exit(if ok { 0 } else { 1 }) };
        }
        let parent: Vec<u8> = (0..4).flat_map(|_| fieldcrypt::iv::random_iv()).collect();
        let mut child = vec![0u8; 64];
        let mut got = 0;
        while got < child.len() {
            let n = unsafe { read(fds[0], child.as_mut_ptr().add(got), child.len() - got) };
            assert!(n > 0, "the child wrote no IVs");
            got += n as usize;
        }
        let mut status = 0;
        assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0, "the child failed");
        for (i, c) in child.chunks(16).enumerate() {
            for (j, p) in parent.chunks(16).enumerate() {
                assert_ne!(c, p, "the child's IV {i} repeats the parent's IV {j}");
            }
        }
    }
}

fn main() {
    #[cfg(unix)]
    unix::child_and_parent_ivs_differ();
    println!("fork_ivs: a forked child draws IVs of its own");
}
