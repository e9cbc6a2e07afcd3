//! Greets from Rust, echoes its arguments and `GREETING`, and exits with
//! the status given as its first argument (0 without one).

use std::collections::BTreeMap;

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let counts: BTreeMap<usize, &str> = arguments.iter().map(String::as_str).enumerate().collect();
    println!("Hello from Rust! {} arguments", counts.len());
    for (index, argument) in &counts {
        println!("argv[{index}]={argument}");
    }
    match std::env::var("GREETING") {
        Ok(greeting) => println!("GREETING={greeting}"),
        Err(_) => println!("GREETING is not set"),
    }
    let sum: u64 = (0..100_000u64).sum();
    println!("sum={sum}");
    let status = arguments.get(1).and_then(|status| status.parse().ok()).unwrap_or(0);
    std::process::exit(status);
}
