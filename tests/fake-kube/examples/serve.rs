//! Runs a fake API server until interrupted, for poking at it by hand:
//! `cargo run --example serve -- /tmp/dir` writes `/tmp/dir/kubeconfig`.

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let handle = fake_kube::FakeKube::start_blocking();
    let kubeconfig = handle.kubeconfig(std::path::Path::new(&dir));
    println!("{} {}", handle.url, kubeconfig.display());
    // Prints each request as it comes.
    let mut seen = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let requests = handle.requests();
        for (method, path) in &requests[seen..] {
            println!("{method} {path}");
        }
        seen = requests.len();
    }
}
