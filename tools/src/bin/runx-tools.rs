use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use runx_tools::uimage::ScriptImage;

/// runx-tools: boot scripts and guest images for runx boards.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pack a u-boot script (boot.cmd) as boot.scr, as `mkimage -T script` does.
    ScriptImage {
        /// The script text.
        input: PathBuf,
        /// Where to write the image.
        output: PathBuf,
        /// Image name stored in the header (at most 32 bytes).
        #[arg(long, default_value = "boot script")]
        name: String,
    },
}

fn source_date_epoch() -> anyhow::Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.parse().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        Err(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            Ok(u32::try_from(now.as_secs())?)
        }
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::ScriptImage { input, output, name } => {
            let text = std::fs::read(&input).with_context(|| format!("cannot read boot script {}", input.display()))?;
            let image = ScriptImage { name, timestamp: source_date_epoch()?, text };
            std::fs::write(&output, image.to_bytes()?).with_context(|| format!("cannot write {}", output.display()))?;
        }
    }
    Ok(())
}
