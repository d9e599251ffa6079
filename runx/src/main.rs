use clap::Parser;

/// runx: run each OCI container as its own Xen guest.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    Cli::parse();
    eprintln!("runx: no command given; see `runx --help`");
    std::process::exit(2);
}
